//! Vulnerability matching: OSV records (`osv`), each ecosystem's version order
//! (`versions`), the OSV evaluation of one record against one package (`affected`), CVSS
//! severity (`severity`) and an in-memory index by package (`index`).
//!
//! Pure code with no I/O beyond reading OSV files: the `vulndb import` store and the scan
//! service call it; matching happens on the server, workers only take inventories.

pub mod affected;
#[cfg(test)]
mod affected_tests;
pub mod index;
pub mod osv;
pub mod severity;
pub mod versions;

pub use affected::{evaluate, Package, UnknownReason, Verdict};
pub use index::{Index, Match};
pub use osv::Record;
pub use severity::{Level, Severity};
pub use versions::Ecosystem;
