//! What a connection is doing, for its header and idle timeouts: waiting for a request head
//! (since when), idle between requests (since when), or busy with requests, which no timeout
//! here cuts.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::ServeLimits;

pub(super) struct Activity {
    state: Mutex<State>,
}

struct State {
    /// Requests whose response has not been sent in full yet.
    in_flight: usize,
    /// When the connection last became idle (no request in flight).
    idle_since: Instant,
    /// When the current request head began: on connecting, or at the first byte after idling.
    head_since: Option<Instant>,
}

impl Activity {
    pub(super) fn new() -> Activity {
        let now = Instant::now();
        Activity {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: now,
                // A new client owes us a request head from the moment it connects.
                head_since: Some(now),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_read(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
        }
    }

    /// A request head has arrived; the returned guard marks its response done when dropped.
    pub(super) fn begin_request(self: &Arc<Self>) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.head_since = None;
        InFlight(self.clone())
    }

    /// When the connection must close unless something happens first; `None` while busy.
    fn deadline(&self, limits: &ServeLimits) -> Option<Instant> {
        let s = self.state();
        match (s.in_flight, s.head_since) {
            (0, Some(head)) => Some(head + limits.header_timeout),
            (0, None) => Some(s.idle_since + limits.idle_timeout),
            _ => None,
        }
    }

    /// Completes when the connection has waited too long for a request head or sat idle too
    /// long. Rechecks instead of being woken: state changes only ever push the deadline later.
    pub(super) async fn expired(&self, limits: &ServeLimits) {
        loop {
            match self.deadline(limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => tokio::time::sleep_until(at).await,
                None => {
                    tokio::time::sleep(limits.header_timeout.min(limits.idle_timeout)).await;
                }
            }
        }
    }
}

/// One request in flight, until its response body has been sent or dropped.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    /// The response body, holding this request in flight until it is sent in full.
    pub(super) fn until_sent(self, body: Body) -> Body {
        Body::new(Sending {
            body,
            _in_flight: self,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
        }
    }
}

struct Sending {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket that tells its `Activity` when bytes arrive.
pub(super) struct TrackedIo<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackedIo<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> TrackedIo<S> {
        TrackedIo { inner, activity }
    }

    /// The socket, once hyper is done with it.
    pub(super) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
