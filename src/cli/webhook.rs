//! `kiln webhook create | list | delete | ping | list-events | redeliver`, like `az acr webhook`.

use clap::{Args, Subcommand};

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
// A name, and a name with an output format, as `kiln task` takes them.
use super::task::{NameArgs, ShowArgs as ListEventsArgs};
use super::{CliError, OutputArgs, OutputFormat, ServerArgs};
use crate::wire::webhooks::{CreateWebhook, Delivery, DeliveryList, Webhook, WebhookList};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send registry and run events to a URL; prints the signing secret, shown this once.
    Create(CreateArgs),
    /// List webhooks (never their secrets).
    List(OutputArgs),
    /// Delete a webhook and its delivery log.
    Delete(NameArgs),
    /// Send a signed `ping` event.
    Ping(NameArgs),
    /// The latest deliveries: action, status, attempts, response.
    ListEvents(ListEventsArgs),
    /// Send a delivery again, as a new delivery.
    Redeliver(RedeliverArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    /// Where events are POSTed (http:// or https://).
    #[arg(long)]
    pub uri: String,
    /// push, delete, run-succeeded, run-failed, run-canceled, run-timeout, run-error,
    /// run-expired; comma-separated or repeated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub actions: Vec<String>,
    /// Only events of repositories matching this pattern (`app/*`).
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    /// The delivery's ID, from `list-events`.
    #[arg(long)]
    pub id: i64,
    #[command(flatten)]
    pub server: ServerArgs,
}

fn path(name: &str) -> String {
    format!(
        "/api/webhooks/{}",
        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    )
}

pub async fn run(cmd: WebhookCommand) -> Result<(), CliError> {
    match cmd {
        WebhookCommand::Create(a) => {
            let req = CreateWebhook {
                name: a.name,
                uri: a.uri,
                actions: a.actions,
                scope: a.scope,
            };
            let hook: Webhook = KilnClient::new(&a.server)?
                .post_json("/api/webhooks", &req)
                .await?;
            if a.output == OutputFormat::Json {
                return print_json(&hook);
            }
            println!("{}", hook.secret.as_deref().unwrap_or_default());
            eprintln!(
                "Created webhook '{}': the secret above signs its deliveries (X-Kiln-Signature-256) and is shown this once.",
                hook.name
            );
            Ok(())
        }
        WebhookCommand::List(a) => {
            let list: WebhookList = KilnClient::new(&a.server)?
                .get_json("/api/webhooks", &())
                .await?;
            if a.output == OutputFormat::Json {
                return print_json(&list);
            }
            let rows: Vec<[String; 4]> = list
                .webhooks
                .iter()
                .map(|w| {
                    [
                        w.name.clone(),
                        w.uri.clone(),
                        w.actions.join(","),
                        w.scope.clone().unwrap_or("*".into()),
                    ]
                })
                .collect();
            print!("{}", table(["NAME", "URI", "ACTIONS", "SCOPE"], &rows));
            Ok(())
        }
        WebhookCommand::Delete(a) => {
            KilnClient::new(&a.server)?.delete(&path(&a.name)).await?;
            eprintln!("Deleted webhook '{}'.", a.name);
            Ok(())
        }
        WebhookCommand::Ping(a) => {
            let d: Delivery = KilnClient::new(&a.server)?
                .post_json(&format!("{}/ping", path(&a.name)), &serde_json::json!({}))
                .await?;
            eprintln!("Queued ping delivery {} to webhook '{}'.", d.id, a.name);
            Ok(())
        }
        WebhookCommand::ListEvents(a) => {
            let list: DeliveryList = KilnClient::new(&a.server)?
                .get_json(&format!("{}/deliveries", path(&a.name)), &())
                .await?;
            if a.output == OutputFormat::Json {
                return print_json(&list);
            }
            let rows: Vec<[String; 6]> = list
                .deliveries
                .iter()
                .map(|d| {
                    [
                        d.id.to_string(),
                        d.action.clone(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        d.response_code.map_or("-".into(), |c| c.to_string()),
                        timestamp(d.updated_at),
                    ]
                })
                .collect();
            let header = ["ID", "ACTION", "STATUS", "ATTEMPTS", "RESPONSE", "UPDATED"];
            print!("{}", table(header, &rows));
            Ok(())
        }
        WebhookCommand::Redeliver(a) => {
            let d: Delivery = KilnClient::new(&a.server)?
                .post_json(
                    &format!("{}/deliveries/{}/redeliver", path(&a.name), a.id),
                    &serde_json::json!({}),
                )
                .await?;
            eprintln!("Queued delivery {} again as delivery {}.", a.id, d.id);
            Ok(())
        }
    }
}
