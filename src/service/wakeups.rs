//! Waking the lease requests that wait for work: only those a change concerns, so an idle
//! worker is not made to look at the queue for runs it cannot build.
//!
//! This is in-process, a `Notify` per waiting request. A multi-node server replaces it, behind
//! the same calls, with its database's notifications (PostgreSQL `LISTEN/NOTIFY` on a channel
//! per platform); waiters also look again when their long poll ends, so a lost wake-up costs
//! time, never a run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_worker::protocol::{Platform, PlatformSet};
use tokio::sync::Notify;

/// The lease requests waiting for work.
#[derive(Default)]
pub struct Wakeups {
    waiters: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    next: u64,
    by_id: HashMap<u64, Waiter>,
}

struct Waiter {
    platforms: Vec<Platform>,
    /// It left a run to a better placed worker on its last look.
    deferred: bool,
    notify: Arc<Notify>,
}

/// One waiting lease request; it stops being woken when dropped.
pub struct Waiting<'a> {
    wakeups: &'a Wakeups,
    id: u64,
    notify: Arc<Notify>,
}

impl Waiting<'_> {
    /// Resolves once something it may take changed since it registered (a wake-up before
    /// this call is kept, so none is missed between registering and looking).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// It left a run to a better placed worker: wake it when any worker takes a run, since
    /// that may have been the one it waits for.
    pub fn deferred(&self) {
        let mut waiters = self.wakeups.lock();
        if let Some(w) = waiters.by_id.get_mut(&self.id) {
            w.deferred = true;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.wakeups.lock().by_id.remove(&self.id);
    }
}

impl Wakeups {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a lease request of a worker that builds `platforms`. Register before
    /// looking at the queue, so a run queued in between wakes it.
    pub fn wait(&self, platforms: &[Platform]) -> Waiting<'_> {
        let notify = Arc::new(Notify::new());
        let mut waiters = self.lock();
        waiters.next += 1;
        let id = waiters.next;
        waiters.by_id.insert(
            id,
            Waiter {
                platforms: platforms.to_vec(),
                deferred: false,
                notify: notify.clone(),
            },
        );
        Waiting {
            wakeups: self,
            id,
            notify,
        }
    }

    /// A run for `platforms` was queued (or queued again): wakes the requests of workers
    /// that build all of them.
    pub fn queued(&self, platforms: &PlatformSet) {
        self.wake(|w| platforms.is_within(&w.platforms));
    }

    /// A worker took a run: requests that left a run to another worker look again.
    pub fn claimed(&self) {
        self.wake(|w| w.deferred);
    }

    /// Every waiting request looks again (the server stops handing out runs).
    pub fn all(&self) {
        self.wake(|_| true);
    }

    fn wake(&self, concerned: impl Fn(&Waiter) -> bool) {
        for w in self.lock().by_id.values().filter(|w| concerned(w)) {
            w.notify.notify_one();
        }
    }

    /// How many requests wait now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platforms(p: &str) -> PlatformSet {
        p.parse().unwrap()
    }

    /// Whether `waiting` was woken, without waiting for it.
    fn woken(waiting: &Waiting<'_>) -> bool {
        use std::future::Future;
        let fut = std::pin::pin!(waiting.woken());
        let waker = futures::task::noop_waker();
        fut.poll(&mut std::task::Context::from_waker(&waker))
            .is_ready()
    }

    #[test]
    fn a_queued_run_wakes_only_workers_that_build_all_its_platforms() {
        let wakeups = Wakeups::default();
        let amd64 = platforms("linux/amd64");
        let both = platforms("linux/amd64,linux/arm64");
        let a = wakeups.wait(amd64.iter().as_slice());
        let ab = wakeups.wait(both.iter().as_slice());
        let s390x = wakeups.wait(platforms("linux/s390x").iter().as_slice());
        wakeups.queued(&both);
        assert!(!woken(&a));
        assert!(woken(&ab));
        assert!(!woken(&s390x));
        wakeups.queued(&amd64);
        assert!(woken(&a));
        assert!(!woken(&s390x));
    }

    #[test]
    fn a_claim_wakes_only_those_that_deferred_and_dropping_unregisters() {
        let wakeups = Wakeups::default();
        let amd64 = platforms("linux/amd64");
        let plain = wakeups.wait(amd64.iter().as_slice());
        let deferring = wakeups.wait(amd64.iter().as_slice());
        deferring.deferred();
        wakeups.claimed();
        assert!(!woken(&plain));
        assert!(woken(&deferring));
        drop(plain);
        drop(deferring);
        assert_eq!(wakeups.len(), 0);
    }
}
