//! One handler per client frame kind (ssr only), after mini-redis's `cmd/`:
//! `Session::handle` matches the frame and calls the kind's `run`, so a new
//! frame kind is one new file and one new match arm. Each handler appends
//! its replies to the session's output.

pub mod ping;
pub mod publish;
pub mod send;
pub mod subscribe;
pub mod typing;
pub mod unsubscribe;
