//! What starts task runs by itself. Every trigger queues through
//! `TaskService::run_triggered`, so a triggered run is an ordinary task run.

pub mod base_images;
