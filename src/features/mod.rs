//! Features: each file holds components together with the server functions
//! they call (both builds; server-function bodies run on the server only and
//! reach server code through `crate::server`).

pub mod account;
pub mod chat_room;
pub mod chat_text;
pub mod events;
pub mod forms;
pub mod members;
pub mod messages;
pub mod rooms;
