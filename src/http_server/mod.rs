//! The HTTP serving loop: what `axum::serve` does, plus the limits a server facing the open
//! network needs. A client must finish its request head within `header_timeout` and may keep an
//! idle connection for `idle_timeout`; a request body that stops for `body_timeout` fails. None
//! of these cut a response in progress, so log follows, the lease long-poll and long blob
//! uploads are unaffected.
//!
//! Connections are capped at `max_connections`. Past the cap, a small reserve of extra
//! connections still answers `/healthz` (and tells everything else to come back later with a
//! 503), so a load balancer keeps seeing a live server while it sheds load; past the reserve
//! too, the loop stops accepting, which leaves new clients waiting in the kernel's backlog
//! instead of costing file descriptors.

mod activity;
mod linger;
mod shed;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

use self::activity::{Activity, TrackedIo};
use crate::config::ServeArgs;

/// A client connection as hyper reads and writes it.
type Io = TokioIo<TrackedIo<TcpStream>>;

/// How long in-flight requests may take to finish once shutdown begins, unless set otherwise.
/// The longest pause after failed accepts (e.g. EMFILE) before trying again.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The limits the serving loop enforces.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Time a client has to send a complete request head, from connecting or from its first
    /// byte after an idle spell.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Time a request body may go without a byte while the server waits for it.
    pub body_timeout: Duration,
    /// Connections served in full at once.
    pub max_connections: usize,
    /// Time in-flight requests get to finish after shutdown is signalled.
    pub shutdown_grace: Duration,
}

impl ServeLimits {
    /// The limits `kiln serve` was given.
    pub fn from_args(args: &ServeArgs) -> ServeLimits {
        ServeLimits {
            header_timeout: args.header_timeout,
            idle_timeout: args.idle_timeout,
            body_timeout: args.body_timeout,
            max_connections: args.max_connections,
            shutdown_grace: args.shutdown_grace,
        }
    }

    /// Connections accepted past the cap only to answer health checks and shed load: enough
    /// for a few probes at once, small next to the cap.
    pub fn reserve(&self) -> usize {
        (self.max_connections / 16).clamp(8, 64)
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, lets
/// in-flight requests finish for `shutdown_grace` and closes what is left. Dropping the future
/// closes every connection at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) {
    let limits = Arc::new(limits);
    let full = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve()));
    let force = CancellationToken::new();
    let _close_all_on_drop = force.clone().drop_guard();
    let mut accept_errors = AcceptErrors::default();
    loop {
        let slot = tokio::select! {
            slot = Slot::acquire(&full, &reserve) => slot,
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_errors.failed(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        accept_errors.recovered();
        // A full slot may have come free while this one waited in `accept`.
        let slot = slot.prefer_full(&full);
        let conn = Connection {
            limits: limits.clone(),
            shutdown: shutdown.clone(),
            force: force.clone(),
        };
        tokio::spawn(conn.run(stream, slot, router.clone()));
    }
    drop(listener);
    // Every slot back means every connection has ended.
    let drained = async {
        let _all = full.acquire_many(limits.max_connections as u32).await;
        let _all = reserve.acquire_many(limits.reserve() as u32).await;
    };
    if tokio::time::timeout(limits.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "closing connections still open after the shutdown grace period"
        );
    }
}

/// A connection's share of the budget: served in full, or only to shed load.
enum Slot {
    Full(OwnedSemaphorePermit),
    Shed(OwnedSemaphorePermit),
}

impl Slot {
    /// A full slot when there is one, else a reserve slot; waits while both are used up.
    async fn acquire(full: &Arc<Semaphore>, reserve: &Arc<Semaphore>) -> Slot {
        if let Ok(p) = full.clone().try_acquire_owned() {
            return Slot::Full(p);
        }
        if let Ok(p) = reserve.clone().try_acquire_owned() {
            return Slot::Shed(p);
        }
        // The semaphores are never closed, so acquiring cannot fail.
        tokio::select! {
            Ok(p) = full.clone().acquire_owned() => Slot::Full(p),
            Ok(p) = reserve.clone().acquire_owned() => Slot::Shed(p),
        }
    }

    fn prefer_full(self, full: &Arc<Semaphore>) -> Slot {
        match self {
            Slot::Shed(p) => match full.clone().try_acquire_owned() {
                Ok(f) => Slot::Full(f),
                Err(_) => Slot::Shed(p),
            },
            slot => slot,
        }
    }
}

struct Connection {
    limits: Arc<ServeLimits>,
    shutdown: CancellationToken,
    force: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream, slot: Slot, router: Router) {
        // Small requests and answers go out at once rather than waiting on Nagle.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io: Io = TokioIo::new(TrackedIo::new(stream, activity.clone()));
        let mut builder = http1::Builder::new();
        // `Activity` keeps the header and idle timeouts; hyper's own would count idle time
        // between requests against the header timeout.
        builder.header_read_timeout(None::<Duration>);
        match slot {
            Slot::Full(_permit) => {
                let body_timeout = self.limits.body_timeout;
                let tracked = activity.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let request = tracked.begin_request();
                    let req = req.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
                    let router = router.clone();
                    // Boxed so that hyper can hand the socket back (`poll_without_shutdown`).
                    Box::pin(async move {
                        let Ok(resp) = router.oneshot(req).await;
                        Ok::<_, std::convert::Infallible>(resp.map(|b| request.until_sent(b)))
                    })
                });
                self.drive(builder.serve_connection(io, service), &activity)
                    .await;
            }
            Slot::Shed(_permit) => {
                builder.keep_alive(false);
                let tracked = activity.clone();
                let max = self.limits.max_connections;
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let request = tracked.begin_request();
                    let resp = shed::answer(&req, max);
                    std::future::ready(Ok::<_, std::convert::Infallible>(
                        resp.map(|b| request.until_sent(b)),
                    ))
                });
                self.drive(builder.serve_connection(io, service), &activity)
                    .await;
            }
        }
    }

    /// Runs the connection until it ends, times out between requests, or shutdown closes it.
    /// A connection that ended with its last answer sent is closed without a reset under a
    /// client that may still be sending (see `linger`).
    async fn drive<S>(&self, mut conn: http1::Connection<Io, S>, activity: &Activity)
    where
        S: HttpService<Incoming, ResBody = Body> + Unpin,
        S::Future: Unpin,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut draining = false;
        loop {
            tokio::select! {
                result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                    match result {
                        Ok(()) => linger::close(conn.into_parts().io.into_inner().into_inner()).await,
                        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
                    }
                    return;
                }
                // Dropping the connection closes the socket; no request is in flight.
                () = activity.expired(&self.limits) => return,
                () = self.force.cancelled() => return,
                () = self.shutdown.cancelled(), if !draining => {
                    draining = true;
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                }
            }
        }
    }
}

/// Failed accepts: EMFILE and friends come in bursts. Each burst is logged once, and the loop
/// pauses a little longer after each failure, so it neither spins nor floods the log.
#[derive(Default)]
struct AcceptErrors {
    in_burst: u64,
}

impl AcceptErrors {
    async fn failed(&mut self, e: std::io::Error) {
        if is_per_connection(&e) {
            // The client gave up before we accepted it: nothing is wrong with the server.
            return;
        }
        if self.in_burst == 0 {
            tracing::warn!(error = %e, "cannot accept connections; backing off");
        }
        self.in_burst += 1;
        let pause = Duration::from_millis(10 << self.in_burst.min(7)).min(MAX_ACCEPT_BACKOFF);
        tokio::time::sleep(pause).await;
    }

    fn recovered(&mut self) {
        if self.in_burst > 0 {
            tracing::info!(
                failed_accepts = self.in_burst,
                "accepting connections again"
            );
            self.in_burst = 0;
        }
    }
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}
