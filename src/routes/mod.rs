//! Pages, one file each: `home` (the lobby), `room` (a chat room) and
//! `account` (log in, sign up, the account page).

pub mod home;
pub mod room;
pub mod account;
