//! HTTP client for the public API, used by every client command.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use kiln_worker::protocol::{
    ApiErrorBody, DatabaseState, Digest, RunId, ScanReport, Secret, SourceState,
};
use reqwest::StatusCode;

use super::{CliError, ServerArgs};
use crate::wire::{
    ContextUploaded, CreatePurgeRun, CreateRun, CreateScanRun, CreateStepsRun, CreateToken,
    CreatedToken, ListQuery, Run, RunList, SubmitLimits, Token, TokenList,
};

#[derive(Clone)]
pub struct KilnClient {
    http: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

impl KilnClient {
    pub fn new(args: &ServerArgs) -> Result<KilnClient, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| CliError::Server(format!("cannot set up the HTTP client: {e}")))?;
        Ok(KilnClient {
            http,
            base: args.server.trim_end_matches('/').to_string(),
            token: args.resolve_token()?,
        })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        check(resp).await
    }

    fn unreachable(&self, e: reqwest::Error) -> CliError {
        CliError::Server(format!(
            "cannot reach the Kiln server at {}: {e}",
            self.base
        ))
    }

    /// `GET path` with a query, answered with JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &impl serde::Serialize,
    ) -> Result<T, CliError> {
        let req = self.request(reqwest::Method::GET, path).query(query);
        json(self.send(req).await?).await
    }

    /// `POST path` with a JSON body, answered with JSON.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, CliError> {
        let req = self.request(reqwest::Method::POST, path).json(body);
        json(self.send(req).await?).await
    }

    /// `DELETE path`, answered with JSON.
    pub async fn delete_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, CliError> {
        json(
            self.send(self.request(reqwest::Method::DELETE, path))
                .await?,
        )
        .await
    }

    /// `PATCH path` with a JSON body, answered with JSON.
    pub async fn patch_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, CliError> {
        let req = self.request(reqwest::Method::PATCH, path).json(body);
        json(self.send(req).await?).await
    }

    /// `DELETE path`, answered with no body.
    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        self.send(self.request(reqwest::Method::DELETE, path))
            .await?;
        Ok(())
    }

    /// `kiln vulndb import`: replaces source `name` with the records of `zip`.
    pub async fn import_vuln_source(
        &self,
        name: &str,
        zip: Vec<u8>,
    ) -> Result<SourceState, CliError> {
        let path = format!("/api/vulndb/sources/{name}");
        let req = self
            .request(reqwest::Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/zip")
            .body(zip);
        json(self.send(req).await?).await
    }

    /// `kiln vulndb status`.
    pub async fn vuln_status(&self) -> Result<DatabaseState, CliError> {
        self.get_json("/api/vulndb", &()).await
    }

    /// The stored scan reports of `repository` at `reference` (a tag or `sha256:…`), one
    /// per platform.
    pub async fn scan_reports(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Vec<ScanReport>, CliError> {
        let query = [("repository", repository), ("reference", reference)];
        self.get_json("/api/scans", &query).await
    }

    pub async fn context_exists(&self, digest: &Digest) -> Result<bool, CliError> {
        let resp = self
            .request(reqwest::Method::HEAD, &format!("/api/contexts/{digest}"))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(resp).await.map(|_| false),
        }
    }

    /// Streams an archive to the server, which answers with its digest once it is stored.
    pub async fn upload_context<S>(&self, body: S) -> Result<ContextUploaded, CliError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
    {
        let req = self
            .request(reqwest::Method::POST, "/api/contexts")
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .body(reqwest::Body::wrap_stream(body));
        json(self.send(req).await?).await
    }

    pub async fn create_run(&self, req: &CreateRun) -> Result<Run, CliError> {
        json(
            self.send(self.request(reqwest::Method::POST, "/api/runs").json(req))
                .await?,
        )
        .await
    }

    /// `POST /api/runs/steps`: queue a task file or a cmd.
    pub async fn create_steps_run(&self, req: &CreateStepsRun) -> Result<Run, CliError> {
        self.post_json("/api/runs/steps", req).await
    }

    pub async fn create_purge_run(&self, req: &CreatePurgeRun) -> Result<Run, CliError> {
        self.post_json("/api/runs/purge", req).await
    }

    /// Queues a scan run (`kiln scan`).
    pub async fn create_scan_run(&self, req: &CreateScanRun) -> Result<Run, CliError> {
        self.post_json("/api/runs/scan", req).await
    }

    /// The server's rules for run requests; `None` from a server too old to say.
    pub async fn limits(&self) -> Result<Option<SubmitLimits>, CliError> {
        let resp = self
            .send(self.request(reqwest::Method::GET, "/api/limits"))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json(check(resp).await?).await.map(Some)
    }

    pub async fn run(&self, id: &str) -> Result<Run, CliError> {
        json(
            self.send(self.request(reqwest::Method::GET, &format!("/api/runs/{id}")))
                .await?,
        )
        .await
    }

    pub async fn list_runs(&self, q: &ListQuery) -> Result<RunList, CliError> {
        let req = self.request(reqwest::Method::GET, "/api/runs").query(q);
        json(self.send(req).await?).await
    }

    pub async fn cancel(&self, id: &str) -> Result<Run, CliError> {
        let path = format!("/api/runs/{id}/cancel");
        json(
            self.send(self.request(reqwest::Method::POST, &path))
                .await?,
        )
        .await
    }

    /// The log from `offset`; with `follow`, a clean end of stream means the run finished.
    pub async fn logs(
        &self,
        id: RunId,
        offset: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<Bytes, CliError>>, CliError> {
        let req = self
            .request(reqwest::Method::GET, &format!("/api/runs/{id}/logs"))
            .query(&[
                ("offset", offset.to_string()),
                ("follow", follow.to_string()),
            ]);
        let resp = self.send(req).await?;
        let base = self.base.clone();
        Ok(resp
            .bytes_stream()
            .map_err(move |e| CliError::Server(format!("log stream from {base} broke: {e}"))))
    }
}

impl KilnClient {
    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken, CliError> {
        self.post_json("/api/tokens", req).await
    }

    pub async fn list_tokens(&self) -> Result<TokenList, CliError> {
        self.get_json("/api/tokens", &()).await
    }

    pub async fn revoke_token(&self, name: &str) -> Result<(), CliError> {
        let path = format!("/api/tokens/{name}");
        self.send(self.request(reqwest::Method::DELETE, &path))
            .await?;
        Ok(())
    }

    /// The token this client sends, as the server knows it.
    pub async fn whoami(&self) -> Result<Token, CliError> {
        self.get_json("/api/whoami", &()).await
    }

    /// `whoami` for a token the user has just given (`kiln login`): a 401 says the server
    /// refused that token and why, not the server's advice to log in.
    pub async fn check_token(&self) -> Result<Token, CliError> {
        let resp = self
            .request(reqwest::Method::GET, "/api/whoami")
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return json(check(resp).await?).await;
        }
        let message = ApiErrorBody::message_of(&resp.text().await.unwrap_or_default());
        Err(CliError::Rejected(format!(
            "the server at {} refused the token: {}",
            self.base,
            ApiErrorBody::without_login_hint(&message)
        )))
    }
}

async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, CliError> {
    resp.json()
        .await
        .map_err(|e| CliError::Server(format!("unexpected answer from the server: {e}")))
}

/// 4xx answers are the input's fault (exit 2); 5xx and the rest are the server's.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, CliError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let message = match ApiErrorBody::message_of(&text) {
        m if m.is_empty() => format!("server answered {status}"),
        m => m,
    };
    if status.is_client_error() {
        Err(CliError::Rejected(message))
    } else {
        Err(CliError::Server(message))
    }
}
