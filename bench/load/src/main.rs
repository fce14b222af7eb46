//! `tandem-load`: drives tandem (or its Socket.IO peer) with many real
//! clients and reports what they saw. See the README's "Benchmarks" section
//! and `bench/run.sh`, which runs every scenario against both servers.
//!
//! ```text
//! tandem-load fanout --transport ws --target 127.0.0.1:3000 --subs 1000 --rate 100 --duration 10 \
//!     --server-pid 1234 --json out.json --label "1k x 100/s"
//! tandem-load idle --transport ws --target 127.0.0.1:3000 --subs 20000 --hold 20 --server-pid 1234
//! ```
//! Against tandem every connection presents an access token: `--token` (the
//! secret), or by default a new token of the account `--account` (default
//! `bench`; signed up on first use), which the server must list in its
//! `publishers` setting (`TANDEM_PUBLISHERS='["bench"]'`).
//! It refuses to report a run in which its own CPU was saturated (the
//! numbers would describe the load tool, not the server): it exits with
//! status 3 and writes no result file.
//! `--transport floor` drives the calibration server (`src/bin/floor.rs`).
//! `LOAD_TRACE=1` prints the drain's progress and what receivers missed.

mod auth;
mod fairness;
mod procfs;
mod revocation;
mod scenario;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: tandem-load <fanout|idle> [--transport ws|sse|long-poll|short-poll|floor|floor-long-poll|sio-ws|sio-poll] [--target HOST:PORT] \
         [--topic T] [--token T | --account NAME] [--subs N] [--rate MSG_PER_S] [--duration S] [--hold S] [--settle-ms MS] \
         [--connect-concurrency N] [--deflate 1] [--pad BYTES] [--server-pid PID] [--json FILE] [--label TEXT]\n\
         \x20      tandem-load fairness [--target HOST:PORT] [--token T | --account NAME] [--flood backfill|send] [--flooders N] \
         [--interval-ms MS] [--duration S] [--json FILE]\n\
         \x20      tandem-load revocation [--target HOST:PORT] [--rounds N] [--json FILE]"
    );
    std::process::exit(2)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = args.first().cloned() else {
        usage()
    };
    let mut flags = HashMap::new();
    for pair in args[1..].chunks(2) {
        match pair {
            [k, v] if k.starts_with("--") => {
                flags.insert(k.trim_start_matches("--").to_owned(), v.clone());
            }
            _ => usage(),
        }
    }
    let get = |k: &str, d: &str| flags.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let num = |k: &str, d: u64| -> anyhow::Result<u64> { Ok(get(k, &d.to_string()).parse()?) };
    let transport_name = get("transport", "ws");
    // tandem's transports (the WebSocket and the fallback rungs).
    let tandem = ["ws", "sse", "long-poll", "short-poll"].contains(&transport_name.as_str());
    let default_topic = if tandem { "ticker:BENCH" } else { "bench" };
    let options = scenario::Options {
        subs: num("subs", 100)? as usize,
        rate: num("rate", 100)?,
        duration: Duration::from_secs(num("duration", 10)?),
        connect_concurrency: num("connect-concurrency", 64)? as usize,
        server_pid: flags.get("server-pid").cloned(),
        hold: Duration::from_secs(num("hold", 10)?),
        settle: Duration::from_millis(num("settle-ms", 3000)?),
        deflate: get("deflate", "0") == "1",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // tandem: an access token of the `bench` account (read, write, publish)
    // unless one is given; the server must list `bench` in `publishers`.
    let target = get("target", "127.0.0.1:3000");
    let token = match flags.get("token") {
        Some(t) => t.clone(),
        None if scenario == "revocation" => String::new(),
        None if tandem || scenario == "fairness" => runtime.block_on(auth::token(
            &target,
            &get("account", "bench"),
            "read,write,publish",
        ))?,
        None => String::new(),
    };
    let transport: Arc<dyn transport::Transport> = Arc::from(transport::open(
        &transport_name,
        &target,
        &get("topic", default_topic),
        &token,
        transport::Extras {
            deflate: get("deflate", "0") == "1",
            pad: num("pad", 0)? as usize,
        },
    )?);
    if scenario == "revocation" {
        let report = runtime.block_on(revocation::run(&target, num("rounds", 50)?))?;
        let json = serde_json::to_string(&report)?;
        if let Some(path) = flags.get("json") {
            std::fs::write(path, &json)?;
        }
        println!("{json}");
        return Ok(());
    }
    if scenario == "fairness" {
        let o = fairness::Options {
            target: get("target", "127.0.0.1:3000"),
            token: token.clone(),
            flood: get("flood", "backfill"),
            flooders: num("flooders", 8)? as usize,
            interval: Duration::from_millis(num("interval-ms", 200)?),
            duration: Duration::from_secs(num("duration", 10)?),
        };
        let report = runtime.block_on(fairness::run(&o))?;
        let json = serde_json::to_string(&report)?;
        if let Some(path) = flags.get("json") {
            std::fs::write(path, &json)?;
        }
        println!("{json}");
        return Ok(());
    }
    let report = runtime.block_on(async {
        match scenario.as_str() {
            "fanout" => scenario::fanout(transport, &options).await,
            "idle" => scenario::idle(transport, &options).await,
            _ => usage(),
        }
    })?;
    // A refused run leaves no result behind.
    if report.client_saturated {
        eprintln!(
            "refusing to report: the load tool used {:.0}% of its {} core(s); the figures would measure the client",
            report.client_cpu_core_share * 100.0,
            report.client_cores
        );
        std::process::exit(3);
    }
    let mut json = serde_json::to_value(&report)?;
    json["label"] = get("label", &scenario).into();
    if let Some(path) = flags.get("json") {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    println!("{}", serde_json::to_string(&json)?);
    Ok(())
}
