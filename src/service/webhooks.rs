//! Outbound webhooks: the events outbox fanned out to URLs. The consumer turns each event into
//! one delivery per matching webhook (in the delivery log); the sender POSTs due deliveries,
//! signed with `X-Kiln-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, and retries a
//! failure with exponential backoff until it gives up. Both survive restarts: the consumer's
//! cursor and the pending deliveries are in the database.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use super::auth::random_bytes;
use super::source_triggers::github_signature;
use super::{to_time, ServiceError};
use crate::access::{Principal, RepoPattern};
use crate::clock::SharedClock;
use crate::store::{Attempt, Event, EventRow, Store, WebhookDeliveryRow, WebhookRow};
use crate::wire::webhooks::{CreateWebhook, Delivery, DeliveryList, Webhook, WebhookList};

/// The consumer name of the webhooks' cursor in `event_cursors`.
pub const CONSUMER: &str = "webhooks";
/// The actions a webhook may ask for.
pub const ACTIONS: &[&str] = &[
    "push",
    "delete",
    "run-succeeded",
    "run-failed",
    "run-canceled",
    "run-timeout",
    "run-error",
    "run-expired",
];
/// Attempts before a delivery is given up as Failed.
const MAX_ATTEMPTS: u32 = 8;
/// The first retry's delay, doubled each time up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A receiver that does not answer in this long has failed the attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The delivery log shows this many deliveries.
const LOG_SIZE: u32 = 50;

pub struct WebhookService {
    store: Store,
    clock: SharedClock,
    http: reqwest::Client,
    /// Wakes the sender when a delivery is queued.
    queued: Notify,
}

impl WebhookService {
    pub fn new(store: Store, clock: SharedClock) -> WebhookService {
        WebhookService {
            store,
            clock,
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .build()
                .unwrap_or_default(),
            queued: Notify::new(),
        }
    }

    pub async fn create(
        &self,
        req: CreateWebhook,
        who: &Principal,
    ) -> Result<Webhook, ServiceError> {
        who.require_owner()?;
        if req.name.is_empty()
            || req.name.len() > 50
            || !req
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "invalid webhook name '{}': use 1-50 letters, digits, '-' and '_'",
                req.name
            )));
        }
        match reqwest::Url::parse(&req.uri) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(invalid(format!(
                    "invalid webhook URI '{}': use an http:// or https:// URL",
                    req.uri
                )))
            }
        }
        if req.actions.is_empty() {
            return Err(invalid(format!(
                "no actions given: use {}",
                ACTIONS.join(", ")
            )));
        }
        if let Some(bad) = req.actions.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
            return Err(invalid(format!(
                "unknown action '{bad}': use {}",
                ACTIONS.join(", ")
            )));
        }
        if let Some(scope) = &req.scope {
            scope.parse::<RepoPattern>().map_err(invalid)?;
        }
        let row = WebhookRow {
            id: 0,
            name: req.name.clone(),
            uri: req.uri,
            actions: req.actions,
            scope: req.scope,
            secret: hex::encode(random_bytes::<32>()),
            created_at: self.clock.now_ms(),
        };
        let Some(row) = self.store.insert_webhook(&row).await? else {
            return Err(ServiceError::Conflict(format!(
                "webhook '{}' already exists",
                req.name
            )));
        };
        tracing::info!(webhook = %row.name, "webhook created");
        let secret = row.secret.clone();
        Ok(Webhook {
            secret: Some(secret),
            ..view(row)
        })
    }

    pub async fn list(&self, who: &Principal) -> Result<WebhookList, ServiceError> {
        who.require_owner()?;
        let rows = self.store.list_webhooks().await?;
        Ok(WebhookList {
            webhooks: rows.into_iter().map(view).collect(),
        })
    }

    pub async fn delete(&self, name: &str, who: &Principal) -> Result<(), ServiceError> {
        who.require_owner()?;
        if !self.store.delete_webhook(name).await? {
            return Err(not_found(name));
        }
        tracing::info!(webhook = name, "webhook deleted");
        Ok(())
    }

    /// Queues a `ping` delivery, signed like any other.
    pub async fn ping(&self, name: &str, who: &Principal) -> Result<Delivery, ServiceError> {
        who.require_owner()?;
        let hook = self.row(name).await?;
        let now = self.clock.now_ms();
        let body = json!({
            "id": format!("ping-{now}"),
            "timestamp": to_time(now),
            "action": "ping",
            "webhook": hook.name,
        });
        self.queue(&hook, "ping", &body)
            .await
            .and_then(delivery_view)
    }

    pub async fn deliveries(
        &self,
        name: &str,
        who: &Principal,
    ) -> Result<DeliveryList, ServiceError> {
        who.require_owner()?;
        let hook = self.row(name).await?;
        let rows = self
            .store
            .list_webhook_deliveries(hook.id, LOG_SIZE)
            .await?;
        Ok(DeliveryList {
            deliveries: rows
                .into_iter()
                .map(delivery_view)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Sends delivery `id` again, as a new delivery with the same body.
    pub async fn redeliver(
        &self,
        name: &str,
        id: i64,
        who: &Principal,
    ) -> Result<Delivery, ServiceError> {
        who.require_owner()?;
        let hook = self.row(name).await?;
        let old = self.store.get_delivery(hook.id, id).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("webhook '{name}' has no delivery {id}"))
        })?;
        let row = self
            .store
            .insert_webhook_delivery(hook.id, &old.action, &old.body, self.clock.now_ms())
            .await?;
        self.queued.notify_one();
        delivery_view(row)
    }

    async fn row(&self, name: &str) -> Result<WebhookRow, ServiceError> {
        self.store
            .get_webhook(name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    async fn queue(
        &self,
        hook: &WebhookRow,
        action: &str,
        body: &serde_json::Value,
    ) -> Result<WebhookDeliveryRow, ServiceError> {
        let row = self
            .store
            .insert_webhook_delivery(hook.id, action, &body.to_string(), self.clock.now_ms())
            .await?;
        self.queued.notify_one();
        Ok(row)
    }

    /// Reads the events outbox forever, queueing a delivery per matching webhook.
    pub async fn consume_forever(self: Arc<Self>) {
        let store = self.store.clone();
        super::events::consume(store, CONSUMER, |row| {
            let this = self.clone();
            async move { this.on_event(row).await }
        })
        .await;
    }

    async fn on_event(&self, row: EventRow) -> Result<(), ServiceError> {
        let action = row.event.action();
        let repositories: Vec<&str> = match &row.event {
            Event::Push { repository, .. } | Event::Delete { repository, .. } => {
                vec![repository.as_str()]
            }
            Event::RunFinished { repositories, .. } => {
                repositories.iter().map(String::as_str).collect()
            }
        };
        let body = json!({
            "id": row.id.to_string(),
            "timestamp": to_time(row.created_at),
            "action": action,
            "event": row.event,
        });
        for hook in self.store.list_webhooks().await? {
            if !hook.actions.contains(&action) {
                continue;
            }
            let in_scope = match hook.scope.as_deref().map(str::parse::<RepoPattern>) {
                None => true,
                Some(Ok(scope)) => repositories.iter().any(|r| scope.matches(r)),
                Some(Err(_)) => false,
            };
            if in_scope {
                self.queue(&hook, &action, &body).await?;
            }
        }
        Ok(())
    }

    /// Sends due deliveries forever, retrying failures with backoff.
    pub async fn send_forever(self: Arc<Self>) {
        loop {
            let wait = match self.send_due().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "sending webhooks failed");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = self.queued.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends what is due; returns how long until the next delivery is due.
    async fn send_due(&self) -> Result<Duration, ServiceError> {
        let now = self.clock.now_ms();
        for delivery in self.store.due_deliveries(now, 100).await? {
            let Some(hook) = self.store.webhook_by_id(delivery.webhook_id).await? else {
                continue;
            };
            self.send(&hook, &delivery).await?;
        }
        let next = self.store.next_delivery_due().await?;
        let now = self.clock.now_ms();
        Ok(match next {
            Some(at) => Duration::from_millis((at - now).clamp(0, 60_000) as u64),
            None => Duration::from_secs(60),
        })
    }

    async fn send(
        &self,
        hook: &WebhookRow,
        delivery: &WebhookDeliveryRow,
    ) -> Result<(), ServiceError> {
        // `sha256=<hex HMAC>`, GitHub's form, which receivers already know how to check.
        let signature = github_signature(&hook.secret, delivery.body.as_bytes());
        let sent = self
            .http
            .post(&hook.uri)
            .header("Content-Type", "application/json")
            .header("User-Agent", "Kiln-Hookshot")
            .header("X-Kiln-Event", &delivery.action)
            .header("X-Kiln-Delivery", delivery.id.to_string())
            .header("X-Kiln-Signature-256", signature)
            .body(delivery.body.clone())
            .send()
            .await;
        let (code, error) = match sent {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
            Ok(resp) => (
                Some(resp.status().as_u16()),
                Some(format!("the receiver answered {}", resp.status())),
            ),
            // reqwest's text names the URL, which the owner gave: fine for the owner's log.
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let now = self.clock.now_ms();
        let attempts = delivery.attempts + 1;
        let status = match &error {
            None => "Delivered",
            Some(_) if attempts >= MAX_ATTEMPTS => "Failed",
            Some(_) => "Pending",
        };
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (attempts - 1).min(16))
            .min(MAX_BACKOFF);
        if let Some(e) = &error {
            tracing::warn!(webhook = %hook.name, delivery.id = delivery.id, attempts, error = %e, "webhook delivery failed");
        }
        self.store
            .record_attempt(
                delivery.id,
                Attempt {
                    status,
                    next_attempt_at: now + backoff.as_millis() as i64,
                    response_code: code,
                    error: error.as_deref(),
                    now,
                },
            )
            .await?;
        Ok(())
    }
}

fn view(row: WebhookRow) -> Webhook {
    Webhook {
        name: row.name,
        uri: row.uri,
        actions: row.actions,
        scope: row.scope,
        created_at: to_time(row.created_at),
        secret: None,
    }
}

fn delivery_view(row: WebhookDeliveryRow) -> Result<Delivery, ServiceError> {
    Ok(Delivery {
        id: row.id,
        action: row.action,
        status: row.status,
        attempts: row.attempts,
        response_code: row.response_code,
        error: row.error,
        created_at: to_time(row.created_at),
        updated_at: to_time(row.updated_at),
        body: serde_json::from_str(&row.body)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("delivery body: {e}")))?,
    })
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(msg.into())
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("no webhook named '{name}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_githubs_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            github_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
