//! What compressing one message costs, as tandem's server does it
//! (`src/server/realtime/deflate.rs`: raw DEFLATE, default level, the
//! compressor reset before every message, a sync flush, zlib-rs): a chat
//! event and a ticker update of the sizes `bench/run.sh compression` sends.
//! Prints µs per message (median of 5 rounds of 20,000) and the sizes.
//!
//!     cargo run --release --manifest-path bench/load/Cargo.toml --bin deflate_cost

use flate2::{Compress, Compression, FlushCompress};
use std::time::Instant;

const CHAT: &[u8] = br#"{"type":"event","topic":"room:1","version":{"epoch":1795857448,"seq":12345},"data":{"kind":"message","id":12345,"room_id":1,"author":"bench","author_id":3,"body":"1795857448300803 sounds good, I will send the numbers after lunch and we can go over","client_id":"6a1b2c3d-0000-4000-8000-000000003039","sent_at":"2026-11-28T10:00:38.123Z"}}"#;
const TICK: &[u8] = br#"{"type":"event","topic":"ticker:BENCH","version":{"epoch":1795857448,"seq":12345},"data":{"kind":"tick","price":100.25,"ts":1795857448300803}}"#;

fn main() {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(4096);
    for (name, text) in [("chat event", CHAT), ("ticker update", TICK)] {
        let mut rounds = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let n = 20_000;
            let t = Instant::now();
            for _ in 0..n {
                c.reset();
                out.clear();
                c.compress_vec(text, &mut out, FlushCompress::Sync)
                    .expect("compresses");
                size = out.len() - 4;
            }
            rounds.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        rounds.sort_by(f64::total_cmp);
        println!(
            "{name}: {} bytes -> {size} compressed; {:.2} us per message (median of 5; range {:.2}-{:.2})",
            text.len(),
            rounds[2],
            rounds[0],
            rounds[4]
        );
    }
}
