//! Receiving one webhook delivery: find the task by its hook ID, check the signature over
//! the raw body, record the delivery (a repeat stops there), read the event, decide, and
//! queue a run through `TaskService::run_triggered` or fold the commit into a queued one.

use std::sync::Arc;

use axum::http::HeaderMap;
use kiln_worker::protocol::RunId;
use serde_json::json;

use super::decide::{decide, Decision, Rules};
use super::event::{parse, EventKind, GitEvent};
use super::provider::{envelope, verify, Envelope};
use super::settings::git_parts;
use crate::clock::SharedClock;
use crate::service::tasks::TaskService;
use crate::service::{Firing, ServiceError};
use crate::store::{NewDelivery, Store, TaskRow};
use crate::wire::hooks::{Delivery, DeliveryList, HookAnswer};
use crate::wire::tasks::TaskStatus;

/// The newest deliveries kept per task.
pub const KEEP_DELIVERIES: u32 = 200;
/// How long a delivery may stay `pending` before a retry of it is acted on again: far longer
/// than acting on one takes, so only a delivery whose process died is taken over.
const PENDING_TAKEOVER_MS: i64 = 60_000;
/// The largest body accepted: GitHub's own cap on a payload.
pub const MAX_BODY: usize = 25 << 20;

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// No task has this hook, or it has no secret: said the same way for both.
    #[error("no webhook at this URL")]
    NotFound,
    #[error("the delivery's signature is missing or does not match the webhook's secret")]
    BadSignature,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// How a delivery was answered.
#[derive(Debug)]
pub enum Outcome {
    /// A run queued, or a queued run given the newer commit (202).
    Queued(HookAnswer),
    /// Nothing ran, and why (200).
    Ignored(HookAnswer),
}

pub struct HookService {
    store: Store,
    tasks: Arc<TaskService>,
    clock: SharedClock,
}

impl HookService {
    pub fn new(store: Store, tasks: Arc<TaskService>, clock: SharedClock) -> HookService {
        HookService {
            store,
            tasks,
            clock,
        }
    }

    pub async fn deliver(
        &self,
        hook: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Outcome, HookError> {
        let task = self
            .store
            .get_task_by_hook(hook)
            .await
            .map_err(ServiceError::from)?
            .ok_or(HookError::NotFound)?;
        let secret = task
            .spec
            .secrets
            .webhook_secret
            .as_deref()
            .ok_or(HookError::NotFound)?;
        let env = envelope(headers);
        let authentic = env.as_ref().is_some_and(|e| verify(secret, body, &e.proof));
        let Some(env) = env.clone().filter(|_| authentic) else {
            let (provider, event, id) = match &env {
                Some(e) => (e.provider.as_str(), e.event.as_str(), e.delivery_id.clone()),
                None => ("unknown", "unknown", None),
            };
            let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            self.record(
                &task,
                provider,
                &id,
                event,
                false,
                "refused: bad or missing signature",
            )
            .await?;
            tracing::warn!(task = %task.name, provider, delivery.id = %id, "webhook delivery refused: bad or missing signature");
            return Err(HookError::BadSignature);
        };
        // A host that sends no delivery ID cannot be deduplicated: each delivery counts.
        let delivery_id = env
            .delivery_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let Some(recorded) = self
            .record(
                &task,
                env.provider.as_str(),
                &delivery_id,
                &env.event,
                true,
                "pending",
            )
            .await?
        else {
            return Ok(ignored("duplicate delivery: already received"));
        };
        let payload = form_payload(headers, body);
        let event = match parse(env.provider, &env.event, payload.as_deref().unwrap_or(body)) {
            Ok(event) => event,
            Err(m) => {
                self.settle(recorded, &format!("refused: {m}"), None)
                    .await?;
                return Err(HookError::Malformed(m));
            }
        };
        let outcome = self.act(&task, &env, &delivery_id, &event).await;
        let (verdict, run) = match &outcome {
            Ok(Outcome::Queued(a) | Outcome::Ignored(a)) => (a.verdict.clone(), a.run_id),
            Err(_) => (
                "failed: internal error (see the server's log)".to_owned(),
                None,
            ),
        };
        self.settle(recorded, &verdict, run).await?;
        tracing::info!(task = %task.name, provider = env.provider.as_str(), event = %env.event,
            delivery.id = %delivery_id, run.id = ?run.map(|r| r.to_string()), verdict, "webhook delivery");
        outcome
    }

    /// What the event does to the task, as an answer; errors only for internal failures.
    async fn act(
        &self,
        task: &TaskRow,
        env: &Envelope,
        delivery_id: &str,
        event: &GitEvent,
    ) -> Result<Outcome, HookError> {
        let (branch, subdir) = git_parts(&task.spec).unwrap_or_default();
        let rules = Rules {
            triggers: &task.spec.source_triggers,
            branch: task
                .spec
                .source_triggers
                .branch
                .as_deref()
                .or(branch.as_deref()),
            subdir: subdir.as_deref(),
        };
        let (trigger, commit, branch, push, coalesce) = match decide(&rules, event) {
            Decision::Run {
                trigger,
                commit,
                branch,
                push,
                coalesce,
            } => (trigger, commit, branch, push, coalesce),
            Decision::Skip(why) => return Ok(ignored(&why)),
        };
        if task.status == TaskStatus::Disabled.as_str() {
            return Ok(ignored(&format!("task '{}' is disabled", task.name)));
        }
        let mut detail = json!({
            "provider": env.provider.as_str(),
            "event": env.event,
            "delivery": delivery_id,
            "commit": commit,
        });
        if let Some(branch) = &branch {
            detail["branch"] = branch.clone().into();
        }
        if let Some(tag) = &event.tag {
            detail["tag"] = tag.clone().into();
        }
        if let (EventKind::PullRequest, Some(n)) = (event.kind, event.number) {
            detail["pullRequest"] = n.into();
        }
        if let (true, Some(branch)) = (coalesce, &branch) {
            let folded = self
                .store
                .coalesce_queued_commit(task.id, branch, &commit, &detail)
                .await
                .map_err(ServiceError::from)?;
            if let Some(run) = folded {
                return Ok(queued(
                    run,
                    format!("coalesced into run {run}: it builds {commit} now"),
                ));
            }
        }
        let firing = Firing {
            trigger,
            detail,
            commit: Some(commit.clone()),
            branch,
            push,
        };
        match self.tasks.run_triggered(task.id, firing).await {
            Ok(run) => Ok(queued(run.id, format!("queued run {} of {commit}", run.id))),
            Err(e @ (ServiceError::Store(_) | ServiceError::Io(_) | ServiceError::Log(_))) => {
                Err(e.into())
            }
            Err(e) => Ok(ignored(&format!("not run: {e}"))),
        }
    }

    async fn record(
        &self,
        task: &TaskRow,
        provider: &str,
        delivery_id: &str,
        event: &str,
        authentic: bool,
        verdict: &str,
    ) -> Result<Option<i64>, HookError> {
        let now = self.clock.now_ms();
        let d = NewDelivery {
            task_id: task.id,
            provider,
            delivery_id,
            event,
            authentic,
            received_at: now,
            verdict,
        };
        Ok(self
            .store
            .insert_delivery(d, KEEP_DELIVERIES, now - PENDING_TAKEOVER_MS)
            .await
            .map_err(ServiceError::from)?)
    }

    async fn settle(&self, id: i64, verdict: &str, run: Option<RunId>) -> Result<(), HookError> {
        Ok(self
            .store
            .settle_delivery(id, verdict, run)
            .await
            .map_err(ServiceError::from)?)
    }

    /// A task's recent deliveries, for whoever may read tasks.
    pub async fn deliveries(
        &self,
        name: &str,
        who: &crate::access::Principal,
    ) -> Result<DeliveryList, ServiceError> {
        who.require_any(crate::access::Action::Pull)?;
        let task = self
            .store
            .get_task(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("task '{name}' not found")))?;
        let rows = self.store.list_deliveries(task.id, KEEP_DELIVERIES).await?;
        Ok(DeliveryList {
            deliveries: rows
                .into_iter()
                .map(|d| Delivery {
                    id: d.delivery_id,
                    provider: d.provider,
                    event: d.event,
                    verdict: d.verdict,
                    run_id: d.run,
                    received_at: crate::service::to_time(d.received_at),
                })
                .collect(),
        })
    }
}

fn ignored(why: &str) -> Outcome {
    Outcome::Ignored(HookAnswer {
        run_id: None,
        verdict: why.to_owned(),
    })
}

fn queued(run: RunId, verdict: String) -> Outcome {
    Outcome::Queued(HookAnswer {
        run_id: Some(run),
        verdict,
    })
}

/// GitHub's form-encoded deliveries carry the JSON in a `payload` field.
fn form_payload(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
}
