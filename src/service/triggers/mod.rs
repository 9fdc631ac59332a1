//! What starts task runs by itself: each trigger decides when, and queues the run through
//! `TaskService::run_triggered`, the one path every trigger uses, so a triggered run is an
//! ordinary task run. Scan-on-push is the exception: it queues a scan run, no task.

pub mod base_images;
pub mod scan_on_push;
pub mod timers;
