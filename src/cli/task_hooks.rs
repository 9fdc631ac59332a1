//! Source triggers in the CLI: the `kiln task create|update` trigger flags (as
//! `az acr task` names them), the webhook part of `task show`, and `kiln task deliveries`.

use clap::Args;

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
use super::task::ShowArgs;
use super::{CliError, OutputFormat};
use crate::wire::hooks::{DeliveryList, TriggerSettings};
use crate::wire::tasks::Task;

/// The trigger flags of `create` and `update`.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// Run the task on pushes to its context's branch (a glob such as `release/*` is
    /// allowed); default false. Prints the webhook URL and secret to give the git host.
    #[arg(long, value_name = "BOOL")]
    pub commit_trigger_enabled: Option<bool>,
    /// Run the task on pull/merge requests into its branch (opened, reopened, new commits).
    #[arg(long, value_name = "BOOL")]
    pub pull_request_trigger_enabled: Option<bool>,
    /// Whether pull-request runs push the task's images; default false.
    #[arg(long, value_name = "BOOL")]
    pub pull_request_push: Option<bool>,
    /// Run the task on tag pushes too; default false.
    #[arg(long, value_name = "BOOL")]
    pub tag_trigger_enabled: Option<bool>,
    /// A path glob a push must touch to run the task (`svc/**`); repeatable. Default: the
    /// context's subdir, else every push. On update, replaces the task's ('' for the default).
    #[arg(long = "trigger-path", value_name = "GLOB")]
    pub trigger_paths: Vec<String>,
    /// The branches whose pushes and pull requests run the task, a glob (`release/*`);
    /// default: the context's branch, else the repository's default ('' on update: that).
    #[arg(long, value_name = "GLOB")]
    pub trigger_branch: Option<String>,
}

impl TriggerArgs {
    pub fn settings(&self, rotate_webhook_secret: bool) -> TriggerSettings {
        let paths: Vec<String> = self
            .trigger_paths
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        TriggerSettings {
            commit_trigger_enabled: self.commit_trigger_enabled,
            pull_request_trigger_enabled: self.pull_request_trigger_enabled,
            pull_request_push: self.pull_request_push,
            tag_trigger_enabled: self.tag_trigger_enabled,
            trigger_paths: (!self.trigger_paths.is_empty()).then_some(paths),
            trigger_branch: self.trigger_branch.clone(),
            rotate_webhook_secret,
        }
    }
}

/// `update`'s own trigger flag.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Make a new webhook secret (printed once); the old one stops working.
    #[arg(long)]
    pub rotate_webhook_secret: bool,
}

/// The triggers part of `task show`: the webhook URL, never its secret, except in the
/// answer that made it.
pub fn print_triggers(t: &Task, server: &str) {
    let s = &t.source_triggers;
    let field = |k: &str, v: String| println!("{k:<16} {v}");
    let on = |b: bool| if b { "enabled" } else { "disabled" }.to_string();
    field("Commit trigger:", on(s.commit_trigger_enabled));
    field("PR trigger:", on(s.pull_request_trigger_enabled));
    if s.pull_request_trigger_enabled {
        field(
            "PR runs push:",
            if s.pull_request_push { "yes" } else { "no" }.into(),
        );
    }
    field("Tag trigger:", on(s.tag_trigger_enabled));
    if let Some(branch) = &s.trigger_branch {
        field("Trigger branch:", branch.clone());
    }
    if !s.trigger_paths.is_empty() {
        field("Trigger paths:", s.trigger_paths.join(", "));
    }
    if let Some(path) = &s.webhook_path {
        field(
            "Webhook URL:",
            format!("{}{path}", server.trim_end_matches('/')),
        );
    }
    if let Some(secret) = &s.webhook_secret {
        field("Webhook secret:", secret.clone());
        eprintln!(
            "The webhook secret is shown this once: give it and the URL to GitHub, GitLab, \
             Gitea or Forgejo (content type application/json); 'kiln task update --name {} \
             --rotate-webhook-secret' makes a new one.",
            t.name
        );
    }
}

/// `kiln task deliveries`: the task's recent webhook deliveries, newest first.
pub async fn deliveries(a: ShowArgs) -> Result<(), CliError> {
    let list: DeliveryList = KilnClient::new(&a.server)?
        .get_json(&format!("/api/tasks/{}/deliveries", a.name), &())
        .await?;
    if a.output == OutputFormat::Json {
        return print_json(&list);
    }
    let rows: Vec<[String; 5]> = list
        .deliveries
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                format!("{}:{}", d.provider, d.event),
                d.verdict.clone(),
                d.run_id.map(|r| r.to_string()).unwrap_or_default(),
                timestamp(d.received_at),
            ]
        })
        .collect();
    print!(
        "{}",
        table(["ID", "EVENT", "VERDICT", "RUN", "RECEIVED"], &rows)
    );
    Ok(())
}
