//! The two measurements: `fanout` (N subscribers, one publisher at a fixed
//! rate: latency, fan-out completion, throughput, loss and duplicates) and
//! `idle` (N connections held open: memory and keep-alive cost, connect cost).
//!
//! Concurrency: one task per subscriber, each with its own histogram (merged
//! at the end) and counters; fan-out completion is tracked in a shared array
//! of per-message "last receipt" atomics.

use crate::procfs;
use crate::transport::{now_us, Subscriber, Transport};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct Options {
    pub subs: usize,
    pub rate: u64,
    pub duration: Duration,
    pub connect_concurrency: usize,
    pub server_pid: Option<String>,
    pub hold: Duration,
}

#[derive(Serialize, Debug, Default)]
pub struct Quantiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Quantiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

#[derive(Serialize, Debug, Default)]
pub struct ServerFigures {
    pub cpu_s: f64,
    pub cpu_core_share: f64,
    pub rss_kib: u64,
    pub rss_before_kib: u64,
    pub cpu_us_per_delivery: Option<f64>,
    pub cpu_us_per_connect: Option<f64>,
    pub rss_kib_per_connection: Option<f64>,
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub transport: String,
    pub subs: usize,
    pub rate: u64,
    pub duration_s: f64,
    pub connect_per_s: f64,
    pub published: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub latency_us: Quantiles,
    pub fanout_us: Quantiles,
    pub deliveries_per_s: f64,
    pub client_cpu_core_share: f64,
    pub client_cores: usize,
    pub client_saturated: bool,
    pub server: ServerFigures,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant digits; bounds are fixed, so this cannot fail.
    Histogram::new_with_bounds(1, 100_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// Opens `n` subscribers, `concurrency` at a time. Returns them with their start seqs.
async fn connect_all(
    t: &Arc<dyn Transport>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<(Box<dyn Subscriber>, u64)>> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (t, gate) = (t.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            t.subscribe().await
        }));
    }
    let mut subs = Vec::with_capacity(n);
    for task in tasks {
        subs.push(task.await??);
    }
    Ok(subs)
}

struct Tally {
    hist: Histogram<u64>,
    received: u64,
    duplicated: u64,
    last_seq: u64,
}

pub async fn fanout(t: Arc<dyn Transport>, o: &Options) -> anyhow::Result<Report> {
    let server = o.server_pid.as_deref();
    let rss_before = server.map(procfs::rss_kib).transpose()?.unwrap_or(0);
    let t0 = Instant::now();
    let subs = connect_all(&t, o.subs, o.connect_concurrency).await?;
    let connect_s = t0.elapsed().as_secs_f64();
    let mut publisher = t.publisher().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = o.rate * o.duration.as_secs();
    let base = if t.server_seq() {
        subs.iter().map(|s| s.1).max().unwrap_or(0)
    } else {
        0
    };
    anyhow::ensure!(
        subs.iter().all(|s| s.1 == base),
        "subscribers started at different versions"
    );
    // Per message: publish time and time of the last receipt (fan-out completion).
    let sent: Arc<Vec<AtomicI64>> = Arc::new((0..total).map(|_| AtomicI64::new(0)).collect());
    let last: Arc<Vec<AtomicI64>> = Arc::new((0..total).map(|_| AtomicI64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::with_capacity(subs.len());
    for (mut sub, _) in subs {
        let (last, stop) = (last.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally {
                hist: histogram(),
                received: 0,
                duplicated: 0,
                last_seq: base,
            };
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
                let msg = match next {
                    Err(_) => continue,
                    Ok(Ok(Some(m))) => m,
                    Ok(Ok(None)) | Ok(Err(_)) => break,
                };
                let now = now_us();
                if msg.seq <= tally.last_seq {
                    tally.duplicated += 1;
                    continue;
                }
                tally.last_seq = msg.seq;
                tally.received += 1;
                let _ = tally.hist.record((now - msg.ts_us).max(1) as u64);
                if let Some(slot) = last.get((msg.seq - base - 1) as usize) {
                    slot.fetch_max(now, Ordering::Relaxed);
                }
                if tally.received == total {
                    break;
                }
            }
            tally
        }));
    }

    let cpu_self0 = procfs::cpu("self")?;
    let cpu_srv0 = server.map(procfs::cpu).transpose()?;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / o.rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for seq in 1..=total {
        tick.tick().await;
        let ts = now_us();
        sent[(seq - 1) as usize].store(ts, Ordering::Relaxed);
        publisher.publish(seq, ts).await?;
    }
    let publish_s = started.elapsed().as_secs_f64();
    // Let the last deliveries land (bounded), then stop the receivers.
    let drain_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < drain_until && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_self1 = procfs::cpu("self")?;
    let cpu_srv1 = server.map(procfs::cpu).transpose()?;
    stop.store(true, Ordering::Relaxed);

    let mut hist = histogram();
    let (mut received, mut duplicated) = (0, 0);
    for task in tasks {
        let tally = task.await?;
        hist.add(&tally.hist)?;
        received += tally.received;
        duplicated += tally.duplicated;
    }
    let mut fan = histogram();
    for (s, l) in sent.iter().zip(last.iter()) {
        let (s, l) = (s.load(Ordering::Relaxed), l.load(Ordering::Relaxed));
        if s > 0 && l >= s {
            let _ = fan.record((l - s).max(1) as u64);
        }
    }
    let expected = total * o.subs as u64;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (_, client_share) = procfs::delta(cpu_self0, cpu_self1);
    let mut report = Report {
        scenario: "fanout".into(),
        transport: t.name().into(),
        subs: o.subs,
        rate: o.rate,
        duration_s: publish_s,
        connect_per_s: o.subs as f64 / connect_s.max(1e-9),
        published: total,
        expected,
        received,
        lost: expected.saturating_sub(received),
        duplicated,
        latency_us: Quantiles::of(&hist),
        fanout_us: Quantiles::of(&fan),
        deliveries_per_s: received as f64 / publish_s.max(1e-9),
        client_cpu_core_share: client_share,
        client_cores: cores,
        client_saturated: client_share > 0.9 * cores as f64,
        server: ServerFigures::default(),
    };
    if let (Some(pid), Some(a), Some(b)) = (server, cpu_srv0, cpu_srv1) {
        let (cpu_s, share) = procfs::delta(a, b);
        report.server = ServerFigures {
            cpu_s,
            cpu_core_share: share,
            rss_kib: procfs::rss_kib(pid)?,
            rss_before_kib: rss_before,
            cpu_us_per_delivery: (received > 0).then(|| cpu_s * 1e6 / received as f64),
            ..ServerFigures::default()
        };
    }
    Ok(report)
}

pub async fn idle(t: Arc<dyn Transport>, o: &Options) -> anyhow::Result<Report> {
    let pid = o
        .server_pid
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("idle needs --server-pid"))?;
    let rss0 = procfs::rss_kib(pid)?;
    let cpu0 = procfs::cpu(pid)?;
    let self0 = procfs::cpu("self")?;
    let t0 = Instant::now();
    let subs = connect_all(&t, o.subs, o.connect_concurrency).await?;
    let connect_s = t0.elapsed().as_secs_f64();
    let cpu1 = procfs::cpu(pid)?;
    // Keep every connection answering heartbeats while held.
    let stop = Arc::new(AtomicBool::new(false));
    let holders: Vec<_> = subs
        .into_iter()
        .map(|(mut sub, _)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Ok(None) | Err(_)) =
                        tokio::time::timeout(Duration::from_millis(500), sub.next()).await
                    {
                        return false;
                    }
                }
                true
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = procfs::rss_kib(pid)?;
    let hold0 = procfs::cpu(pid)?;
    tokio::time::sleep(o.hold).await;
    let hold1 = procfs::cpu(pid)?;
    let self1 = procfs::cpu("self")?;
    stop.store(true, Ordering::Relaxed);
    let mut alive = 0;
    for h in holders {
        alive += h.await? as u64;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (_, client_share) = procfs::delta(self0, self1);
    let (_, keepalive_share) = procfs::delta(hold0, hold1);
    Ok(Report {
        scenario: "idle".into(),
        transport: t.name().into(),
        subs: o.subs,
        duration_s: o.hold.as_secs_f64(),
        connect_per_s: o.subs as f64 / connect_s.max(1e-9),
        expected: o.subs as u64,
        received: alive,
        lost: o.subs as u64 - alive,
        client_cpu_core_share: client_share,
        client_cores: cores,
        client_saturated: false,
        server: ServerFigures {
            cpu_s: hold1.cpu_s - hold0.cpu_s,
            cpu_core_share: keepalive_share,
            rss_kib: rss1,
            rss_before_kib: rss0,
            cpu_us_per_connect: Some((cpu1.cpu_s - cpu0.cpu_s) * 1e6 / o.subs.max(1) as f64),
            rss_kib_per_connection: Some(rss1.saturating_sub(rss0) as f64 / o.subs.max(1) as f64),
            cpu_us_per_delivery: None,
        },
        ..Report::default()
    })
}
