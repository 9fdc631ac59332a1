//! Consuming the events outbox (`store/events.rs`): each consumer reads the events after its
//! own cursor, handles them in order and advances the cursor, so it picks up where it was
//! after a restart. A commit that recorded events wakes consumers at once; a slow poll covers
//! events another process wrote.

use std::future::Future;
use std::time::Duration;

use super::ServiceError;
use crate::store::{EventRow, Store};

/// Events read at once.
const BATCH: u32 = 100;
/// How often a consumer looks at the table without being woken (events written by another
/// process), and how long it waits after a failure before trying again.
const POLL: Duration = Duration::from_secs(5);

/// Feeds `handler` every event after `consumer`'s cursor, forever. A handler's error (the
/// database, say) is logged and the event handled again after a pause: an event is never
/// skipped, and a handler must record the outcomes it decides (a refused run) itself.
pub async fn consume<F, Fut>(store: Store, consumer: &'static str, handler: F)
where
    F: Fn(EventRow) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let mut woken = store.subscribe_events();
    let mut cursor = loop {
        match store.event_cursor(consumer).await {
            Ok(cursor) => break cursor,
            Err(e) => {
                tracing::error!(consumer, error = %e, "reading the event cursor failed");
                tokio::time::sleep(POLL).await;
            }
        }
    };
    loop {
        // Marked seen before reading, so an event committed meanwhile wakes the next wait.
        woken.borrow_and_update();
        match handle_batch(&store, consumer, cursor, &handler).await {
            Ok((last, full)) => {
                cursor = last;
                if full {
                    continue;
                }
                tokio::select! {
                    _ = woken.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            Err((last, e)) => {
                cursor = last;
                tracing::error!(consumer, error = %e, "handling an event failed; trying again");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Handles the next batch; returns the new cursor and whether the batch was full.
async fn handle_batch<F, Fut>(
    store: &Store,
    consumer: &'static str,
    mut cursor: i64,
    handler: &F,
) -> Result<(i64, bool), (i64, ServiceError)>
where
    F: Fn(EventRow) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let batch = store
        .events_after(cursor, BATCH)
        .await
        .map_err(|e| (cursor, e.into()))?;
    let full = batch.len() == BATCH as usize;
    for row in batch {
        let id = row.id;
        handler(row).await.map_err(|e| (cursor, e))?;
        store
            .advance_event_cursor(consumer, id)
            .await
            .map_err(|e| (cursor, e.into()))?;
        cursor = id;
    }
    Ok((cursor, full))
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::store::registry::NewManifest;
    use crate::store::Event;

    fn manifest<'a>(digest: &'a str, tag: Option<&'a str>) -> NewManifest<'a> {
        NewManifest {
            repository: "app",
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json",
            size: 2,
            artifact_type: None,
            subject: None,
            annotations: None,
            platforms: &[],
            references: &[],
            tag,
            run_id: None,
            now: 1,
        }
    }

    /// Runs a consumer until it handled `n` events, returning them.
    async fn consume_n(store: &Store, consumer: &'static str, n: usize) -> Vec<Event> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let running = tokio::spawn(consume(store.clone(), consumer, move |row| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((row.id, row.event));
                Ok(())
            }
        }));
        let mut seen = Vec::new();
        let mut last = 0;
        while seen.len() < n {
            let (id, event) = rx.recv().await.unwrap();
            last = id;
            seen.push(event);
        }
        // The cursor moves after the handler returns: stop the consumer only once it has, as
        // a consumer stopped before that gets the event again (at least once, by design).
        while store.event_cursor(consumer).await.unwrap() < last {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running.abort();
        let _ = running.await;
        seen
    }

    fn pushed(tag: &str, digest: &str, previous: Option<&str>) -> Event {
        Event::Push {
            repository: "app".into(),
            tag: Some(tag.into()),
            digest: digest.into(),
            previous: previous.map(str::to_string),
            run_id: None,
        }
    }

    #[tokio::test]
    async fn consumers_read_changes_in_order_and_resume_after_their_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        store
            .put_manifest(&manifest("sha256:a", Some("v1")))
            .await
            .unwrap()
            .unwrap();
        // The same digest again changes nothing and records nothing.
        store
            .put_manifest(&manifest("sha256:a", Some("v1")))
            .await
            .unwrap()
            .unwrap();
        store
            .put_manifest(&manifest("sha256:b", Some("v1")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            consume_n(&store, "webhooks", 2).await,
            [
                pushed("v1", "sha256:a", None),
                pushed("v1", "sha256:b", Some("sha256:a"))
            ]
        );

        // Handled events are not handed out again (a restart reads the cursor back);
        // a later delete arrives, woken at once.
        assert!(store.delete_tag("app", "v1").await.unwrap());
        let deleted = Event::Delete {
            repository: "app".into(),
            tag: Some("v1".into()),
            digest: None,
        };
        assert_eq!(consume_n(&store, "webhooks", 1).await, [deleted]);
    }
}
