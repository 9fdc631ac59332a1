//! The server's notion of "now": every time the services stamp or compare (registry GC grace,
//! run retention, queue timeouts, lease expiry) is read from one `Clock`, so tests can move
//! time forward instead of sleeping, and timers can wait for a moment on the same clock.
//!
//! `SystemClock` is the wall clock. `ManualClock` stands still until a test advances it.
//! Tokio's paused time was not used for this: it stops every timer of the runtime (HTTP
//! timeouts, the reaper's tick, Docker calls) and advances on its own whenever the runtime
//! idles, which an in-process server waiting on a real engine does all the time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

/// The longest a `SystemClock` sleep trusts the monotonic timer before reading the wall
/// clock again, so a wall clock set forward (NTP, a resumed VM) is noticed within this.
const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// A source of the current time, shared by the server's services.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Now as Unix milliseconds, the unit every stored time uses.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Returns once `now()` has reached `deadline`: at once when it has already.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;

    /// Returns once `every` has passed on this clock.
    fn sleep(&self, every: Duration) -> BoxFuture<'_, ()> {
        let deadline = self.now() + every;
        self.sleep_until(deadline)
    }
}

/// The shared handle services hold.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The wall clock may jump either way while we sleep: look again on waking.
            while let Ok(left) = (deadline - Utc::now()).to_std() {
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(RECHECK_EVERY)).await;
            }
        })
    }
}

/// A clock for tests: it starts at the wall clock's now and moves only when `advance` or
/// `set` is called. Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at the wall clock's now.
    pub fn new() -> ManualClock {
        ManualClock::at(Utc::now())
    }

    /// A clock standing at `now`.
    pub fn at(now: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(now)),
        }
    }

    /// Moves the clock forward by `by`, waking whatever sleeps until a moment now passed.
    pub fn advance(&self, by: Duration) {
        let by = chrono::TimeDelta::from_std(by).expect("an advance that fits a timestamp");
        self.now.send_modify(|now| *now += by);
    }

    /// Moves the clock to `now`, never backwards.
    pub fn set(&self, now: DateTime<Utc>) {
        self.now.send_if_modified(|current| {
            let later = now > *current;
            if later {
                *current = now;
            }
            later
        });
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let mut seen = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, which this future borrows: it cannot close.
            let _ = seen.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_stands_still_until_advanced() {
        let clock = ManualClock::new();
        let start = clock.now();
        tokio::task::yield_now().await;
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - start, chrono::TimeDelta::seconds(90));
        assert_eq!(clock.now_ms() - start.timestamp_millis(), 90_000);
    }

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new();
        let shared: SharedClock = Arc::new(clock.clone());
        // The deadline is taken now: the task may first run after the clock moved.
        let deadline = clock.now() + Duration::from_secs(3600);
        let sleeper = tokio::spawn(async move { shared.sleep_until(deadline).await });
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("the sleep ended once the hour had passed")
            .unwrap();
    }

    #[tokio::test]
    async fn a_deadline_already_passed_returns_at_once() {
        let clock = ManualClock::new();
        clock.sleep_until(clock.now()).await;
        SystemClock.sleep_until(Utc::now()).await;
    }

    #[test]
    fn setting_a_manual_clock_never_moves_it_back() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.set(start - chrono::TimeDelta::hours(1));
        assert_eq!(clock.now(), start);
        clock.set(start + chrono::TimeDelta::hours(1));
        assert_eq!(clock.now() - start, chrono::TimeDelta::hours(1));
    }
}
