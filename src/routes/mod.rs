//! Pages, one file each: `home` (the lobby), `room` (a chat room) and
//! `account` (log in, sign up, the account page).

pub mod account;
pub mod home;
pub mod room;
