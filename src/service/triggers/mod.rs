//! What starts task runs by itself: each trigger decides when, and queues the run through
//! `TaskService::run_triggered`, the one path every trigger uses.

pub mod timers;
