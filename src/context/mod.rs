//! Build contexts: packing a local folder on the client (honouring `.dockerignore`) and
//! checking an uploaded archive on the server.

pub mod dockerignore;
pub mod pack;
pub mod verify;
