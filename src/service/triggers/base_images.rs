//! The base-image trigger: a task runs again when a base image its last successful run used
//! moves to a new digest. Bases in Kiln's own registry are watched through the events
//! outbox (a push that moves their tag); bases elsewhere are polled every
//! `--base-image-poll-interval`, with jitter. The tracked digest moves before the run is
//! queued, in a compare-and-set, so each change fires each task once; a task's own push
//! never triggers it, so a chain base -> app -> app-debug rebuilds in order, each once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kiln_worker::protocol::{BaseImage, RegistryCredential, RunId, StepState};
use kiln_worker::steps::base_images::{image_parts, resolve_digest};
use serde_json::json;

use super::super::origin::TriggerKind;
use super::super::tasks::TaskService;
use super::super::{Firing, ServiceError};
use crate::clock::SharedClock;
use crate::store::{Event, EventRow, NewBaseImage, Store, TrackedBaseImage};
use crate::wire::base_images::TaskBaseImage;

/// The consumer name of the trigger's cursor in `event_cursors`.
pub const CONSUMER: &str = "base-image-trigger";
/// A registry that does not answer a HEAD in this long is tried again at the next poll.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Tracked references polled per round at most.
const POLL_BATCH: u32 = 100;

/// What a task tracks from a run's report: the build job's base images, or its build
/// steps', normalised as registries name them. A reference that does not parse is left out.
pub(crate) fn tracked_base_images(
    reported: &[BaseImage],
    steps: &[StepState],
) -> Vec<NewBaseImage> {
    let mut out: BTreeMap<String, NewBaseImage> = BTreeMap::new();
    let all = reported
        .iter()
        .chain(steps.iter().flat_map(|s| s.base_images.iter()));
    for base in all {
        let Some(parts) = image_parts(&base.reference) else {
            continue;
        };
        let entry = out
            .entry(base.reference.clone())
            .or_insert_with(|| NewBaseImage {
                reference: base.reference.clone(),
                registry: parts.registry,
                repository: parts.repository,
                tag: parts.tag,
                digest: base.digest.as_ref().map(|d| d.to_string()),
                runtime: false,
            });
        entry.runtime |= base.runtime;
    }
    out.into_values().collect()
}

/// A tracked base image as `task show` lists it.
pub(crate) fn shown_base_image(t: TrackedBaseImage) -> TaskBaseImage {
    TaskBaseImage {
        reference: t.image.reference,
        digest: t.image.digest,
        runtime: t.image.runtime,
    }
}

/// The trigger's settings, from `kiln serve`'s.
pub struct BaseImageTriggers {
    store: Store,
    tasks: Arc<TaskService>,
    /// Kiln's own registry (`host:port`), whose pushes arrive as events instead of polls.
    own_registry: String,
    /// The server's credentials for other registries (`--registry-username`,
    /// `--docker-config`), used for polls.
    credentials: Vec<RegistryCredential>,
    poll_interval: Duration,
    clock: SharedClock,
}

impl BaseImageTriggers {
    pub fn new(
        store: Store,
        tasks: Arc<TaskService>,
        own_registry: String,
        credentials: Vec<RegistryCredential>,
        poll_interval: Duration,
        clock: SharedClock,
    ) -> BaseImageTriggers {
        BaseImageTriggers {
            store,
            tasks,
            own_registry,
            credentials,
            poll_interval,
            clock,
        }
    }

    /// Reads the events outbox forever, firing the tasks a push to Kiln's registry concerns.
    pub async fn consume_forever(self: Arc<Self>) {
        let store = self.store.clone();
        super::super::events::consume(store, CONSUMER, |row| {
            let this = self.clone();
            async move { this.on_event(row).await }
        })
        .await;
    }

    async fn on_event(&self, row: EventRow) -> Result<(), ServiceError> {
        let Event::Push {
            repository,
            tag: Some(tag),
            digest,
            run_id,
            ..
        } = row.event
        else {
            return Ok(());
        };
        // The task whose run pushed this, which the push must not trigger again.
        let pusher = match run_id.as_deref().map(str::parse::<RunId>) {
            Some(Ok(id)) => self.store.get_run(id).await?.and_then(|r| r.task_id),
            _ => None,
        };
        for tracked in self
            .store
            .tasks_tracking(&self.own_registry, &repository, &tag)
            .await?
        {
            if Some(tracked.task_id) == pusher {
                tracing::info!(
                    task.id = tracked.task_id,
                    image = %tracked.image.reference,
                    "base image pushed by the task's own run: not triggering it again"
                );
                continue;
            }
            self.changed(&tracked, &digest).await?;
        }
        Ok(())
    }

    /// Fires `tracked`'s task if its base now resolves to `to` instead of what it tracked.
    async fn changed(&self, tracked: &TrackedBaseImage, to: &str) -> Result<(), ServiceError> {
        let from = tracked.image.digest.as_deref();
        if from == Some(to) {
            return Ok(());
        }
        let Some(task) = self.store.get_task_by_id(tracked.task_id).await? else {
            return Ok(());
        };
        if !task
            .spec
            .base_image_trigger
            .fires_for(tracked.image.runtime)
        {
            return Ok(());
        }
        let reference = &tracked.image.reference;
        if !self
            .store
            .move_base_image(task.id, reference, from, to)
            .await?
        {
            // Another firing of the same change moved it first.
            return Ok(());
        }
        // A base on another registry that the task itself pushed (seen by a poll, once
        // the run that pushed it recorded its outputs).
        if self.store.task_pushed(task.id, to).await? {
            tracing::info!(
                task = %task.name, image = %reference,
                "base image pushed by the task's own run: not triggering it again"
            );
            return Ok(());
        }
        let firing = Firing {
            trigger: TriggerKind::ImageUpdate,
            detail: json!({ "image": reference, "from": from, "to": to }),
            commit: None,
            branch: None,
            push: true,
        };
        match self.tasks.run_triggered(task.id, firing).await {
            Ok(run) => tracing::info!(
                task = %task.name, run.id = %run.id, image = %reference, from, to,
                "base image updated: task run queued"
            ),
            Err(e) => tracing::warn!(
                task = %task.name, image = %reference, from, to, error = %e,
                "base image updated, but the task run was refused"
            ),
        }
        Ok(())
    }

    /// Polls the tracked tags on other registries forever, each about once per interval.
    pub async fn poll_forever(self: Arc<Self>) {
        // Often enough that a reference comes due within a tenth of the interval.
        let tick =
            (self.poll_interval / 10).clamp(Duration::from_millis(50), Duration::from_secs(10));
        loop {
            if let Err(e) = self.poll_due().await {
                tracing::error!(error = %e, "polling base images failed");
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// Polls the references due now, each once however many tasks track it.
    async fn poll_due(&self) -> Result<(), ServiceError> {
        let now = self.clock.now_ms();
        let interval = self.poll_interval.as_millis() as i64;
        let due = self
            .store
            .base_images_to_poll(&self.own_registry, now - interval, POLL_BATCH)
            .await?;
        let mut by_reference: BTreeMap<String, Vec<TrackedBaseImage>> = BTreeMap::new();
        for tracked in due {
            by_reference
                .entry(tracked.image.reference.clone())
                .or_default()
                .push(tracked);
        }
        for (reference, tracked) in by_reference {
            let resolved = tokio::time::timeout(
                RESOLVE_TIMEOUT,
                resolve_digest(&reference, &self.credentials),
            )
            .await
            .ok()
            .flatten();
            // Checked a little early, by up to a tenth of the interval, so that references
            // tracked at the same moment drift apart instead of polling in bursts.
            let checked = now - jitter(interval / 10);
            for t in &tracked {
                self.store
                    .base_image_checked(t.task_id, &reference, checked)
                    .await?;
                match &resolved {
                    Some(digest) => self.changed(t, digest).await?,
                    None => tracing::debug!(image = %reference, "base image did not resolve"),
                }
            }
        }
        Ok(())
    }
}

/// A random number of milliseconds in `0..=max`.
fn jitter(max: i64) -> i64 {
    if max <= 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0;
    }
    (u64::from_le_bytes(bytes) % (max as u64 + 1)) as i64
}
