//! Live transports (ssr only). `session` holds what every transport shares
//! (subscriptions, ordering, gap repair, sends); one file per transport
//! drives it: `ws` now, SSE and long polling later.

pub mod session;
pub mod ws;
