//! Outbound webhooks as the API shows and takes them (`kiln webhook …`, like `az acr webhook`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /api/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    pub name: String,
    /// Where events are POSTed: an http:// or https:// URL.
    pub uri: String,
    /// `push`, `delete`, `run-succeeded`, `run-failed`, `run-canceled`, `run-timeout`,
    /// `run-error`, `run-expired`.
    pub actions: Vec<String>,
    /// Only events of repositories matching this pattern (`app/*`); none: every repository.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A webhook; `secret` only in the answer to its creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub name: String,
    pub uri: String,
    pub actions: Vec<String>,
    pub scope: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The HMAC-SHA256 key of `X-Kiln-Signature-256`, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

/// One delivery of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub action: String,
    /// `Pending` (retrying), `Delivered` or `Failed` (gave up).
    pub status: String,
    pub attempts: u32,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The JSON body sent.
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}
