//! The two measurements: `fanout` (N subscribers, one publisher at a fixed
//! rate: latency, fan-out completion, throughput; loss, duplicates and
//! reorders, and what was still in flight when publishing stopped) and
//! `idle` (N connections held open: memory and keep-alive cost, connect cost).
//!
//! Trust: each publish carries the time it was *scheduled* for, so a
//! publisher that falls behind adds its lateness to the latencies instead of
//! hiding it (no coordinated omission). Each receiver records which seqs it
//! got (a bitmap), so a duplicate, a reorder and a loss are told apart.
//! After the last publish the tool waits until every delivery has come or
//! the count still missing stops falling for a second: what never came is
//! lost, what came late was in flight. On a latest-wins topic a receiver
//! behind may be sent only the newest value: the values it skipped are
//! counted as coalesced, and it must end holding the last one.
//!
//! Concurrency: one task per subscriber, each with its own histogram and
//! bitmap (merged at the end); fan-out completion is tracked in shared
//! per-message atomics.

use crate::procfs;
use crate::transport::{now_us, Msg, Subscriber, Transport};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

#[derive(Clone, Debug)]
pub struct Options {
    pub subs: usize,
    pub rate: u64,
    pub duration: Duration,
    pub connect_concurrency: usize,
    pub server_pid: Option<String>,
    pub hold: Duration,
    /// Fan-out: how long the count still owed may stay flat before the
    /// rest is declared lost.
    pub settle: Duration,
    /// permessage-deflate offered (reported; the transport does the offering).
    pub deflate: bool,
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
    /// Wall time of the publishing phase.
    pub duration_s: f64,
    /// Wall time from the last publish until the deliveries stopped coming.
    pub drain_s: f64,
    pub connect_per_s: f64,
    pub published: u64,
    /// Deliveries owed: published × subscribers.
    pub expected: u64,
    /// Distinct deliveries received.
    pub received: u64,
    /// Deliveries not received when the last publish went out (they may come later).
    pub in_flight_at_end: u64,
    /// Never received. Latest-wins: receivers that did not end at the newest value.
    pub lost: u64,
    /// Latest-wins only: values a receiver was never sent because a newer one superseded them.
    pub coalesced: u64,
    pub duplicated: u64,
    /// Received after a later seq of the same topic.
    pub reordered: u64,
    pub latest_wins: bool,
    /// Receivers whose connection ended before the run did (the first reason given).
    pub disconnected: u64,
    pub disconnect_reason: Option<String>,
    /// How many publishes went out later than scheduled by more than 1 ms.
    pub publisher_late: u64,
    pub latency_us: Quantiles,
    pub fanout_us: Quantiles,
    pub deliveries_per_s: f64,
    /// Bytes of WebSocket frames (headers included) received per delivery
    /// (tandem and the calibration server; a batch's bytes are shared by its
    /// deliveries).
    pub wire_bytes_per_delivery: Option<f64>,
    /// permessage-deflate was offered (`--deflate 1`).
    pub deflate_offered: bool,
    pub client_cpu_core_share: f64,
    /// Load-tool CPU per received delivery (its own cost, for calibration).
    pub client_us_per_delivery: Option<f64>,
    /// Idle: the load tool's CPU share while connecting.
    pub client_connect_core_share: Option<f64>,
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

/// What one receiver saw.
struct Tally {
    total: u64,
    /// Bit `i`: seq `base + 1 + i` received.
    seen: Vec<u64>,
    received: u64,
    duplicated: u64,
    reordered: u64,
    highest: u64,
    /// The connection ended (or failed) before the run did.
    ended: Option<String>,
}

impl Tally {
    fn new(total: u64) -> Self {
        Tally {
            total,
            seen: vec![0; (total as usize).div_ceil(64)],
            received: 0,
            duplicated: 0,
            reordered: 0,
            highest: 0,
            ended: None,
        }
    }

    /// The delivery numbers (0-based) not received.
    fn missing(&self) -> Vec<u64> {
        (0..self.total)
            .filter(|i| self.seen[(i / 64) as usize] & (1 << (i % 64)) == 0)
            .collect()
    }

    /// Records delivery number `i` (0-based); `false` if it is a duplicate
    /// or outside the run.
    fn record(&mut self, i: u64) -> bool {
        if i >= self.total {
            return false;
        }
        let Some(word) = self.seen.get_mut((i / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (i % 64);
        if *word & bit != 0 {
            self.duplicated += 1;
            return false;
        }
        *word |= bit;
        self.received += 1;
        if i + 1 < self.highest {
            self.reordered += 1;
        }
        self.highest = self.highest.max(i + 1);
        true
    }
}

/// Shared progress of all receivers.
struct Progress {
    /// Latencies of all receivers (one histogram stays in cache; locked
    /// once per read, uncontended on the tool's one core).
    hist: Mutex<Histogram<u64>>,
    /// Distinct deliveries received, all receivers.
    received: AtomicU64,
    /// Receivers holding the last value.
    at_newest: AtomicU64,
    /// Per message: time of the last receipt, and how many receivers got it.
    last: Vec<AtomicI64>,
    count: Vec<AtomicU32>,
}

pub async fn fanout(t: Arc<dyn Transport>, o: &Options) -> anyhow::Result<Report> {
    let server = o.server_pid.as_deref();
    let trace = std::env::var_os("LOAD_TRACE").is_some();
    let rss_before = server.map(procfs::rss_kib).transpose()?.unwrap_or(0);
    let t0 = Instant::now();
    let subs = connect_all(&t, o.subs, o.connect_concurrency).await?;
    let connect_s = t0.elapsed().as_secs_f64();
    // The publisher has its own thread and runtime: it sleeps with the
    // system's timer (tokio's has 1 ms steps) and waits for no receiver.
    let (start_tx, start_rx) = std::sync::mpsc::channel::<(Instant, i64)>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    // It stays connected until the run ends: what the server has not yet
    // taken from its socket would be dropped with the connection.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (result_tx, result_rx) = tokio::sync::oneshot::channel::<anyhow::Result<(u64, f64)>>();
    let publishing = {
        let (t, rate, total) = (t.clone(), o.rate, o.rate * o.duration.as_secs());
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => {
                    let _ = ready_tx.send(false);
                    return;
                }
            };
            let Ok(mut publisher) = rt.block_on(t.publisher()) else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            let Ok((started, wall0)) = start_rx.recv() else {
                return;
            };
            let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
            let mut late = 0;
            let mut outcome = Ok(());
            for seq in 1..=total {
                let offset = interval * (seq - 1) as u32;
                let due = started + offset;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if Instant::now().duration_since(due) > Duration::from_millis(1) {
                    late += 1;
                }
                // The scheduled time, not the time it actually went out.
                outcome = rt.block_on(publisher.publish(seq, wall0 + offset.as_micros() as i64));
                if outcome.is_err() {
                    break;
                }
            }
            let _ = result_tx.send(outcome.map(|()| (late, started.elapsed().as_secs_f64())));
            let _ = done_rx.recv();
            drop(publisher);
        })
    };
    anyhow::ensure!(
        ready_rx.await.unwrap_or(false),
        "the publisher could not connect"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = o.rate * o.duration.as_secs();
    let latest_wins = t.latest_wins();
    let base = if t.server_seq() {
        subs.iter().map(|s| s.1).max().unwrap_or(0)
    } else {
        0
    };
    anyhow::ensure!(
        subs.iter().all(|s| s.1 == base),
        "subscribers started at different versions"
    );
    let progress = Arc::new(Progress {
        hist: Mutex::new(histogram()),
        received: AtomicU64::new(0),
        at_newest: AtomicU64::new(0),
        last: (0..total).map(|_| AtomicI64::new(0)).collect(),
        count: (0..total).map(|_| AtomicU32::new(0)).collect(),
    });
    let (stop, stopped) = watch::channel(false);

    let mut tasks = Vec::with_capacity(subs.len());
    for (sub, _) in subs {
        let (progress, stopped) = (progress.clone(), stopped.clone());
        tasks.push(tokio::spawn(receive(sub, base, total, progress, stopped)));
    }

    let wire0 = crate::transport::wire::WIRE_BYTES.load(Ordering::Relaxed);
    let cpu_self0 = procfs::cpu("self")?;
    let cpu_srv0 = server.map(procfs::cpu).transpose()?;
    let interval = Duration::from_nanos(1_000_000_000 / o.rate.max(1));
    let wall0 = now_us();
    let _ = start_tx.send((Instant::now(), wall0));
    let (publisher_late, publish_s) = result_rx
        .await
        .map_err(|_| anyhow::anyhow!("the publisher thread ended early"))??;
    let subs = o.subs as u64;
    let expected = total * subs;
    // What is still owed: deliveries (lossless) or receivers without the
    // newest value (latest-wins).
    let owed = |p: &Progress| {
        if latest_wins {
            subs - p.at_newest.load(Ordering::Relaxed)
        } else {
            expected - p.received.load(Ordering::Relaxed)
        }
    };
    let in_flight_at_end = expected - progress.received.load(Ordering::Relaxed);
    let publish_end = Instant::now();
    let (mut best, mut best_at) = (owed(&progress), Instant::now());
    while best > 0
        && best_at.elapsed() < o.settle
        && publish_end.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = owed(&progress);
        if now < best {
            (best, best_at) = (now, Instant::now());
        }
        if trace {
            eprintln!("{:.2}s owed {now}", publish_end.elapsed().as_secs_f64());
        }
    }
    let drain_s = best_at.duration_since(publish_end).as_secs_f64();
    let cpu_self1 = procfs::cpu("self")?;
    let cpu_srv1 = server.map(procfs::cpu).transpose()?;
    let _ = stop.send(true);
    let _ = done_tx.send(());
    let _ = tokio::task::spawn_blocking(move || publishing.join()).await;

    let (mut received, mut duplicated, mut reordered, mut stale) = (0, 0, 0, 0);
    let (mut disconnected, mut why, mut traced) = (0, None, false);
    for task in tasks {
        let tally = task.await??;
        if trace && !traced && tally.received < total {
            // The first receiver that misses something, as an example.
            traced = true;
            let missing = tally.missing();
            eprintln!(
                "a receiver misses {} (first {:?}, last {:?})",
                missing.len(),
                &missing[..missing.len().min(5)],
                missing.last()
            );
        }
        if let Some(e) = tally.ended {
            disconnected += 1;
            why.get_or_insert(e);
        }
        received += tally.received;
        duplicated += tally.duplicated;
        reordered += tally.reordered;
        stale += (tally.highest < total) as u64;
    }
    let mut fan = histogram();
    for (i, (l, c)) in progress.last.iter().zip(progress.count.iter()).enumerate() {
        let (l, c) = (l.load(Ordering::Relaxed), c.load(Ordering::Relaxed));
        let s = wall0 + (interval * i as u32).as_micros() as i64;
        if c as u64 == subs && l >= s {
            let _ = fan.record((l - s).max(1) as u64);
        }
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (client_cpu, client_share) = procfs::delta(cpu_self0, cpu_self1);
    let (lost, coalesced) = if latest_wins {
        (stale, expected - received)
    } else {
        (expected - received, 0)
    };
    let mut report = Report {
        scenario: "fanout".into(),
        transport: t.name().into(),
        subs: o.subs,
        rate: o.rate,
        duration_s: publish_s,
        drain_s,
        connect_per_s: o.subs as f64 / connect_s.max(1e-9),
        published: total,
        expected,
        received,
        in_flight_at_end,
        lost,
        coalesced,
        duplicated,
        reordered,
        latest_wins,
        disconnected,
        disconnect_reason: why,
        publisher_late,
        latency_us: Quantiles::of(
            &*progress
                .hist
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?,
        ),
        fanout_us: Quantiles::of(&fan),
        deliveries_per_s: received as f64 / publish_s.max(1e-9),
        wire_bytes_per_delivery: (received > 0).then(|| {
            let wire = crate::transport::wire::WIRE_BYTES.load(Ordering::Relaxed) - wire0;
            wire as f64 / received as f64
        }),
        deflate_offered: o.deflate,
        client_cpu_core_share: client_share,
        client_us_per_delivery: (received > 0).then(|| client_cpu * 1e6 / received as f64),
        client_connect_core_share: None,
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

/// One receiver: reads until told to stop (late duplicates and reorders
/// are seen too).
async fn receive(
    mut sub: Box<dyn Subscriber>,
    base: u64,
    total: u64,
    progress: Arc<Progress>,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new(total);
    let mut batch: Vec<Msg> = Vec::with_capacity(64);
    loop {
        let open = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            open = sub.recv(&mut batch) => match open {
                Ok(open) => open,
                Err(e) => {
                    tally.ended = Some(e.to_string());
                    break;
                }
            },
        };
        let now = now_us();
        let mut hist = progress
            .hist
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        for msg in batch.drain(..) {
            let Some(i) = msg.seq.checked_sub(base + 1) else {
                continue;
            };
            if !tally.record(i) {
                continue;
            }
            progress.received.fetch_add(1, Ordering::Relaxed);
            let _ = hist.record((now - msg.ts_us).max(1) as u64);
            if let (Some(l), Some(c)) = (
                progress.last.get(i as usize),
                progress.count.get(i as usize),
            ) {
                l.fetch_max(now, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
            }
            if i + 1 == total {
                progress.at_newest.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(hist);
        if !open {
            tally.ended = Some("closed by the server".into());
            break;
        }
    }
    Ok(tally)
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
    let (stop, stopped) = watch::channel(false);
    let holders: Vec<_> = subs
        .into_iter()
        .map(|(mut sub, _)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                loop {
                    tokio::select! {
                        biased;
                        _ = stopped.changed() => return true,
                        open = sub.recv(&mut batch) => {
                            batch.clear();
                            if !matches!(open, Ok(true)) {
                                return false;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = procfs::rss_kib(pid)?;
    let hold0 = procfs::cpu(pid)?;
    let self_hold0 = procfs::cpu("self")?;
    tokio::time::sleep(o.hold).await;
    let hold1 = procfs::cpu(pid)?;
    let self1 = procfs::cpu("self")?;
    let _ = stop.send(true);
    let mut alive = 0;
    for h in holders {
        alive += h.await? as u64;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // Saturation is judged over the hold: keep-alive is measured there, and
    // a tool too busy to answer pings in time would be measured instead.
    let (_, client_share) = procfs::delta(self_hold0, self1);
    let (_, connect_share) = procfs::delta(self0, self_hold0);
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
        client_saturated: client_share > 0.9 * cores as f64,
        client_connect_core_share: Some(connect_share),
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

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn tells_duplicates_reorders_and_gaps_apart() {
        let mut t = Tally::new(100);
        for i in [0, 1, 3, 2, 3, 99] {
            t.record(i);
        }
        assert!(!t.record(100), "outside the run");
        assert_eq!(t.received, 5, "0, 1, 3, 2 and 99 once each");
        assert_eq!(t.duplicated, 1, "3 came twice");
        assert_eq!(t.reordered, 1, "2 came after 3");
        assert_eq!(t.highest, 100);
        assert_eq!(t.missing().len(), 95);
    }
}
