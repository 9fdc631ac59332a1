//! Who may do what. `access` is the pure model (roles, repository patterns, principals); the
//! token service that turns credentials into a `Principal` lives beside it.

pub mod access;

pub use access::{AccessError, Action, Grant, Principal, RepoPattern, Role, Subject, SubjectKind};
