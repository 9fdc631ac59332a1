//! `webhooks` and `webhook_deliveries`: outbound webhooks with their sealed secrets, and each
//! delivery with its attempts (the delivery log and the retry queue at once).

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::runs::corrupt;
use super::{Store, StoreError};

/// A webhook as stored, its secret opened.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub uri: String,
    pub actions: Vec<String>,
    pub scope: Option<String>,
    pub secret: String,
    pub created_at: i64,
}

/// One delivery and how its attempts went.
#[derive(Debug, Clone)]
pub struct WebhookDeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub action: String,
    pub body: String,
    /// `Pending`, `Delivered` or `Failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How an attempt ended, for `record_attempt`.
pub struct Attempt<'a> {
    pub status: &'a str,
    pub next_attempt_at: i64,
    pub response_code: Option<u16>,
    pub error: Option<&'a str>,
    pub now: i64,
}

impl Store {
    /// Stores a webhook; `None` when the name is taken.
    pub async fn insert_webhook(&self, w: &WebhookRow) -> Result<Option<WebhookRow>, StoreError> {
        let actions = serde_json::to_string(&w.actions).map_err(|e| corrupt("actions", e))?;
        let inserted = sqlx::query(
            "INSERT INTO webhooks (name, uri, actions, scope, secret, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING *",
        )
        .bind(&w.name)
        .bind(&w.uri)
        .bind(actions)
        .bind(&w.scope)
        .bind(self.sealer.seal(w.secret.as_bytes()))
        .bind(w.created_at)
        .fetch_optional(&self.pool)
        .await?;
        inserted.map(|r| self.webhook_row(&r)).transpose()
    }

    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.webhook_row(r)).collect()
    }

    pub async fn get_webhook(&self, name: &str) -> Result<Option<WebhookRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.webhook_row(&r)).transpose()
    }

    pub async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues `body` for `webhook_id`, due at once.
    pub async fn insert_webhook_delivery(
        &self,
        webhook_id: i64,
        action: &str,
        body: &str,
        now: i64,
    ) -> Result<WebhookDeliveryRow, StoreError> {
        let row = sqlx::query(
            "INSERT INTO webhook_deliveries
                 (webhook_id, action, body, status, next_attempt_at, created_at, updated_at)
             VALUES (?, ?, ?, 'Pending', ?, ?, ?) RETURNING *",
        )
        .bind(webhook_id)
        .bind(action)
        .bind(body)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        delivery_row(&row)
    }

    /// Pending deliveries due by `now`, oldest first.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries INDEXED BY webhook_deliveries_due
             WHERE status = 'Pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// When the next pending delivery is due, if any is.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        let next = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'Pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next)
    }

    pub async fn webhook_by_id(&self, id: i64) -> Result<Option<WebhookRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.webhook_row(&r)).transpose()
    }

    /// Records an attempt at delivery `id`.
    pub async fn record_attempt(&self, id: i64, a: Attempt<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1,
                 next_attempt_at = ?, response_code = ?, error = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(a.status)
        .bind(a.next_attempt_at)
        .bind(a.response_code)
        .bind(a.error)
        .bind(a.now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `limit` deliveries of a webhook, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(webhook_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    pub async fn get_delivery(
        &self,
        webhook_id: i64,
        id: i64,
    ) -> Result<Option<WebhookDeliveryRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND id = ?")
            .bind(webhook_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    fn webhook_row(&self, r: &SqliteRow) -> Result<WebhookRow, StoreError> {
        let actions: String = r.try_get("actions")?;
        let sealed: String = r.try_get("secret")?;
        let secret = self
            .sealer
            .open(&sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| corrupt("webhook secret", "does not open with the server's key"))?;
        Ok(WebhookRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            uri: r.try_get("uri")?,
            actions: serde_json::from_str(&actions).map_err(|e| corrupt("actions", e))?,
            scope: r.try_get("scope")?,
            secret,
            created_at: r.try_get("created_at")?,
        })
    }
}

fn delivery_row(r: &SqliteRow) -> Result<WebhookDeliveryRow, StoreError> {
    Ok(WebhookDeliveryRow {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        action: r.try_get("action")?,
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        next_attempt_at: r.try_get("next_attempt_at")?,
        response_code: r
            .try_get::<Option<i64>, _>("response_code")?
            .map(|c| c as u16),
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}
