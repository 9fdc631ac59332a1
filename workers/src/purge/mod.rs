//! `acr purge` as pure code: the arguments ([`args`]), the decision of what to delete
//! ([`plan`]), ACR's output lines ([`output`]) and the order and checks of the deletions
//! ([`execute`]). Nothing here touches the network, Docker or a database: the caller lists the
//! registry into an [`plan::Inventory`] and implements [`execute::PurgeTarget`].

pub mod args;
#[cfg(test)]
mod bench_tests;
pub mod duration;
pub mod execute;
#[cfg(test)]
mod execute_tests;
pub mod filter;
pub mod output;
pub mod plan;
mod plan_graph;
#[cfg(test)]
mod plan_props_tests;
#[cfg(test)]
mod plan_tests;

pub use args::{ArgsError, PurgeArgs, UntaggedMode};
pub use execute::{execute, Outcome, PurgeTarget, TargetError};
pub use plan::{plan, Inventory, Plan, PlanError, Policy};
