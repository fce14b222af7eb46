//! Pages, one file each: `home` (the lobby) and `room` (a chat room).

pub mod home;
pub mod room;
