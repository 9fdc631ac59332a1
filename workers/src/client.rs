//! HTTP client for the worker protocol (`/api/worker/…`).

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::StatusCode;

use crate::protocol::{
    ApiErrorBody, ApiErrorDetail, Heartbeat, HeartbeatReply, Lease, LeaseRequest, LogAppendReply,
    ReturnRun, RunId, RunResult, ScanAnswer, ScanUpload, Secret, SourceReply, SourceResolved,
    StepsUpdate, LOG_GAP,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server no longer considers this attempt current: stop working on it.
    #[error("the server superseded this attempt: {0}")]
    Stale(String),
    /// A log upload started past the end of the server's log, which ends at `offset`.
    #[error("the server's log has a gap: {message}")]
    LogGap { offset: u64, message: String },
    #[error("server answered {status}: {message}")]
    Server { status: StatusCode, message: String },
    #[error("cannot reach the Kiln server: {0}")]
    Transport(#[from] reqwest::Error),
}

/// What a worker needs of `GET /api/whoami`'s answer.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TokenIdentity {
    pub name: String,
    pub roles: Vec<String>,
}

#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

impl ServerClient {
    pub fn new(base: &str, token: Option<Secret>) -> Result<ServerClient, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()?;
        Ok(ServerClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.auth(self.http.post(format!("{}{path}", self.base)))
    }

    /// POSTs `body` as JSON and checks the status; the caller reads the answer.
    async fn post_json(
        &self,
        path: &str,
        timeout: Duration,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = self.post(path).timeout(timeout).json(body).send().await?;
        check(resp).await
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    }

    /// The token this worker sends, as the server knows it (`GET /api/whoami`).
    pub async fn whoami(&self) -> Result<TokenIdentity, ClientError> {
        let url = format!("{}/api/whoami", self.base);
        let resp = self
            .auth(self.http.get(url))
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        Ok(check(resp).await?.json().await?)
    }

    /// Waits up to `wait` for a run. `None` when none came in time.
    pub async fn lease(&self, req: &LeaseRequest) -> Result<Option<Lease>, ClientError> {
        let resp = self
            .post("/api/worker/lease")
            .timeout(Duration::from_millis(req.wait_ms) + Duration::from_secs(30))
            .json(req)
            .send()
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(check(resp).await?.json().await?))
    }

    pub async fn heartbeat(&self, run: RunId, attempt: u32) -> Result<HeartbeatReply, ClientError> {
        let path = format!("/api/worker/runs/{run}/heartbeat");
        let heartbeat = Heartbeat { attempt };
        let resp = self
            .post_json(&path, Duration::from_secs(10), &heartbeat)
            .await?;
        Ok(resp.json().await?)
    }

    /// Appends log bytes at `offset`; returns the log's new size.
    pub async fn append_logs(
        &self,
        run: RunId,
        attempt: u32,
        offset: u64,
        data: Bytes,
    ) -> Result<u64, ClientError> {
        let resp = self
            .post(&format!(
                "/api/worker/runs/{run}/logs?attempt={attempt}&offset={offset}"
            ))
            .timeout(Duration::from_secs(30))
            .body(data)
            .send()
            .await?;
        let reply: LogAppendReply = check(resp).await?.json().await?;
        Ok(reply.size)
    }

    pub async fn report(&self, run: RunId, result: &RunResult) -> Result<(), ClientError> {
        let path = format!("/api/worker/runs/{run}/result");
        self.post_json(&path, Duration::from_secs(30), result)
            .await?;
        Ok(())
    }

    /// Reports steps whose state changed (`POST /api/worker/runs/{id}/steps`), fenced by the
    /// attempt. A server without live step states answers 404 (`ClientError::Server`).
    pub async fn report_steps(&self, run: RunId, update: &StepsUpdate) -> Result<(), ClientError> {
        let path = format!("/api/worker/runs/{run}/steps");
        self.post_json(&path, Duration::from_secs(30), update)
            .await?;
        Ok(())
    }

    /// Sends a scan's target (and its inventory, when the server asked for it) and gets the
    /// report or the request for the inventory (`POST /api/worker/runs/{id}/scans`). Matching
    /// a large inventory takes a moment, so the timeout is generous.
    pub async fn upload_scan(
        &self,
        run: RunId,
        upload: &ScanUpload,
    ) -> Result<ScanAnswer, ClientError> {
        let path = format!("/api/worker/runs/{run}/scans");
        let resp = self
            .post_json(&path, Duration::from_secs(300), upload)
            .await?;
        Ok(resp.json().await?)
    }

    /// Hands a run that has not started building back to the queue.
    pub async fn give_back(&self, run: RunId, returned: &ReturnRun) -> Result<(), ClientError> {
        let path = format!("/api/worker/runs/{run}/return");
        self.post_json(&path, Duration::from_secs(30), returned)
            .await?;
        Ok(())
    }

    /// Reports the commit a git context resolved to; answers with the run's image names.
    pub async fn source_resolved(
        &self,
        run: RunId,
        resolved: &SourceResolved,
    ) -> Result<SourceReply, ClientError> {
        let path = format!("/api/worker/runs/{run}/source");
        let resp = self
            .post_json(&path, Duration::from_secs(30), resolved)
            .await?;
        Ok(resp.json().await?)
    }

    /// The run's build context archive, as a stream of bytes.
    pub async fn context(
        &self,
        run: RunId,
        attempt: u32,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, ClientError> {
        let url = format!(
            "{}/api/worker/runs/{run}/context?attempt={attempt}",
            self.base
        );
        let resp = self.auth(self.http.get(url)).send().await?;
        Ok(check(resp)
            .await?
            .bytes_stream()
            .map_err(std::io::Error::other))
    }
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let message = ApiErrorBody::message_of(&text);
    if status == StatusCode::CONFLICT {
        return Err(match ApiErrorBody::parse(&text).map(|b| b.error) {
            Some(ApiErrorDetail {
                code,
                offset: Some(offset),
                ..
            }) if code == LOG_GAP => ClientError::LogGap { offset, message },
            // A stale attempt, or a conflict from a server that predates the codes: stop.
            _ => ClientError::Stale(message),
        });
    }
    Err(ClientError::Server { status, message })
}
