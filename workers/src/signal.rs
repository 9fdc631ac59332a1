//! The signals that stop a process gracefully, shared by `kiln serve` and `kiln-worker`.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what service managers stop with). The
/// handlers are installed by this call, not when the future is first polled, so a signal
/// that comes in between is not lost to the default action (exiting at once).
pub fn stop_requested() -> impl Future<Output = ()> + Send + 'static {
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    async move {
        tokio::select! {
            () = recv(interrupt.as_mut()) => {}
            () = recv(terminate.as_mut()) => {}
        }
    }
}

async fn recv(signal: Option<&mut Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        // No handler could be installed: only the other signal stops gracefully.
        None => std::future::pending().await,
    }
}
