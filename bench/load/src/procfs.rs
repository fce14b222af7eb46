//! CPU time and memory of a process, from /proc (Linux).

use std::time::Instant;

/// Clock ticks per second for /proc/*/stat times (the Linux default).
const TICKS: f64 = 100.0;

#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    /// user + system CPU seconds so far.
    pub cpu_s: f64,
    pub at: Instant,
}

/// user+sys CPU seconds of `pid` ("self" for this process).
pub fn cpu(pid: &str) -> anyhow::Result<CpuSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Ok(CpuSample {
        cpu_s: ticks / TICKS,
        at: Instant::now(),
    })
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// CPU used between two samples, as seconds and as a share of one core.
pub fn delta(a: CpuSample, b: CpuSample) -> (f64, f64) {
    let cpu = b.cpu_s - a.cpu_s;
    let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    (cpu, cpu / wall)
}
