//! Build contexts: packing a folder into a tar stream (honouring `.dockerignore`) and checking
//! an archive someone else made. The CLI packs local folders; workers pack git checkouts and
//! check downloaded tarballs; the server checks uploads. All three share this one copy.

pub mod dockerignore;
pub mod pack;
pub mod verify;
