//! Live transports (ssr only). `session` holds what every transport shares
//! (subscriptions, ordering by policy, catch-up, heartbeats) behind the
//! `backend` seam; `cmd/` has one handler per client frame kind; `frame` is
//! the encoded output unit; one file per transport drives a session: `ws`,
//! `sse`, and `poll` (long and short), the last two through `rungs`, the
//! gate and request format they share. `socket` is the WebSocket protocol
//! itself (framing, permessage-deflate through `deflate`); `wire` the write
//! side it shares with the broker.

pub mod backend;
pub mod cmd;
pub mod deflate;
pub mod flush;
pub mod frame;
pub mod poll;
pub mod rungs;
pub mod session;
pub mod socket;
pub mod sse;
pub mod wire;
pub mod ws;
