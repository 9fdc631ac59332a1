//! `kiln registry repository list | show-tags | show-manifests | show | update | untag |
//! delete` and `kiln registry gc`, in the vocabulary of `az acr repository`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use kiln_worker::protocol::{count, human_size, SeverityTotals};

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
use super::{CliError, OutputArgs, OutputFormat, ServerArgs};
use crate::config::format_duration;
use crate::wire::registry::{
    AttributesUpdate, ChangeableAttributes, Deleted, GcReport, GcRequest, Manifest, Repository,
    Tag, TagOrder, TagsQuery,
};

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Manage the repositories of Kiln's registry.
    #[command(subcommand)]
    Repository(RepositoryCommand),
    /// Delete blobs no manifest uses and abandoned uploads (older than the server's grace
    /// period).
    Gc(GcArgs),
    /// Give Docker the logged-in token for this server's registry (Docker's config or its
    /// credential helper), so `docker push` and `docker pull` work.
    Login(super::registry_login::RegistryLoginArgs),
}

#[derive(Debug, Subcommand)]
pub enum RepositoryCommand {
    /// List repositories.
    List(OutputArgs),
    /// List a repository's tags.
    ShowTags(ShowTagsArgs),
    /// List a repository's manifests with their tags.
    ShowManifests(ShowManifestsArgs),
    /// Show a repository, or one image of it (`repo:tag` or `repo@digest`).
    Show(ShowArgs),
    /// Lock or unlock a repository, a tag (`repo:tag`) or a manifest (`repo@digest`) against
    /// overwriting and deletion, as `az acr repository update` does.
    Update(UpdateArgs),
    /// Remove a tag; the manifest it points at stays.
    Untag(UntagArgs),
    /// Delete a repository, or an image (`repo:tag` or `repo@digest`) with all its tags.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct ShowTagsArgs {
    pub repository: String,
    /// Show digests, times and the run that pushed each tag.
    #[arg(long)]
    pub detail: bool,
    /// Order of the tags (default: by name; with --top, newest first).
    #[arg(long, value_enum)]
    pub orderby: Option<TagOrder>,
    /// Only the first N tags in that order: `--top 5` lists the 5 newest.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: Option<u32>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ShowManifestsArgs {
    pub repository: String,
    /// Show media types, platforms, sizes and the run that pushed each manifest.
    #[arg(long)]
    pub detail: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `repo`, `repo:tag` or `repo@sha256:…`.
    pub image: String,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("attributes")
    .required(true)
    .multiple(true)
    .args(["write_enabled", "delete_enabled", "scan_on_push"])))]
pub struct UpdateArgs {
    /// `repo`, `repo:tag` or `repo@sha256:…`.
    pub image: String,
    /// `false`: a tag cannot be moved by a push, a repository takes no pushes, and neither
    /// can be deleted.
    #[arg(long, value_name = "BOOL")]
    pub write_enabled: Option<bool>,
    /// `false`: it cannot be deleted (nor, for a repository, anything in it).
    #[arg(long, value_name = "BOOL")]
    pub delete_enabled: Option<bool>,
    /// A repository's own setting: `true` scans every manifest pushed to it by tag, `false`
    /// none, whatever `kiln serve --scan-on-push` says.
    #[arg(long, value_name = "BOOL")]
    pub scan_on_push: Option<bool>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UntagArgs {
    /// `repo:tag`.
    pub image: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `repo` (everything in it), `repo:tag` or `repo@sha256:…` (the manifest and its tags).
    pub image: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Report what would be deleted without deleting it.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `repo`, `repo:tag` or `repo@digest`, as the user wrote it.
#[derive(Debug, PartialEq, Eq)]
enum Image {
    Repository(String),
    Tag(String, String),
    Digest(String, String),
}

impl Image {
    fn parse(s: &str) -> Result<Image, CliError> {
        let bad = |why: &str| CliError::Input(format!("invalid image '{s}': {why}"));
        if let Some((repo, digest)) = s.split_once('@') {
            if repo.is_empty() || !digest.starts_with("sha256:") {
                return Err(bad("expected repo@sha256:<hex>"));
            }
            return Ok(Image::Digest(repo.into(), digest.into()));
        }
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        match s[last_slash..].split_once(':') {
            Some((_, "")) => Err(bad("the tag is empty")),
            Some((name, tag)) => Ok(Image::Tag(s[..last_slash].to_string() + name, tag.into())),
            None if s.is_empty() => Err(bad("name a repository")),
            None => Ok(Image::Repository(s.into())),
        }
    }

    fn repository(&self) -> &str {
        match self {
            Image::Repository(r) | Image::Tag(r, _) | Image::Digest(r, _) => r,
        }
    }

    fn reference(&self) -> Option<&str> {
        match self {
            Image::Repository(_) => None,
            Image::Tag(_, r) | Image::Digest(_, r) => Some(r),
        }
    }
}

fn path(repo: &str, rest: &str) -> String {
    format!("/api/registry/repositories/{repo}{rest}")
}

pub async fn run(cmd: RegistryCommand) -> Result<(), CliError> {
    match cmd {
        RegistryCommand::Repository(RepositoryCommand::List(a)) => list(a).await,
        RegistryCommand::Repository(RepositoryCommand::ShowTags(a)) => show_tags(a).await,
        RegistryCommand::Repository(RepositoryCommand::ShowManifests(a)) => show_manifests(a).await,
        RegistryCommand::Repository(RepositoryCommand::Show(a)) => show(a).await,
        RegistryCommand::Repository(RepositoryCommand::Update(a)) => update(a).await,
        RegistryCommand::Repository(RepositoryCommand::Untag(a)) => untag(a).await,
        RegistryCommand::Repository(RepositoryCommand::Delete(a)) => delete(a).await,
        RegistryCommand::Gc(a) => gc(a).await,
        RegistryCommand::Login(a) => super::registry_login::login(a).await,
    }
}

async fn list(a: OutputArgs) -> Result<(), CliError> {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct List {
        repositories: Vec<Repository>,
    }
    let client = KilnClient::new(&a.server)?;
    let list: List = client.get_json("/api/registry/repositories", &()).await?;
    if a.output == OutputFormat::Json {
        return print_json(&list.repositories);
    }
    let rows: Vec<[String; 4]> = list
        .repositories
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.tag_count.to_string(),
                r.manifest_count.to_string(),
                timestamp(r.last_update_time),
            ]
        })
        .collect();
    print!(
        "{}",
        table(["REPOSITORY", "TAGS", "MANIFESTS", "LAST UPDATED"], &rows)
    );
    Ok(())
}

async fn show_tags(a: ShowTagsArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let orderby = match (a.orderby, a.top) {
        (Some(order), _) => order,
        (None, Some(_)) => TagOrder::TimeDesc,
        (None, None) => TagOrder::Name,
    };
    let query = TagsQuery { orderby };
    let mut tags: Vec<Tag> = client
        .get_json(&path(&a.repository, "/_tags"), &query)
        .await?;
    if let Some(top) = a.top {
        tags.truncate(top as usize);
    }
    match (a.output, a.detail) {
        (OutputFormat::Json, true) => print_json(&tags),
        (OutputFormat::Json, false) => {
            print_json(&tags.iter().map(|t| &t.name).collect::<Vec<_>>())
        }
        (OutputFormat::Table, false) => {
            tags.iter().for_each(|t| println!("{}", t.name));
            Ok(())
        }
        (OutputFormat::Table, true) => {
            let rows: Vec<[String; 7]> = tags.iter().map(tag_row).collect();
            let header = [
                "TAG",
                "DIGEST",
                "CREATED",
                "LAST UPDATED",
                "WRITE",
                "DELETE",
                "RUN",
            ];
            print!("{}", table(header, &rows));
            Ok(())
        }
    }
}

fn tag_row(t: &Tag) -> [String; 7] {
    let [write, delete] = locks(&t.changeable_attributes);
    [
        t.name.clone(),
        t.digest.clone(),
        timestamp(t.created_time),
        timestamp(t.last_update_time),
        write,
        delete,
        t.run_id.clone().unwrap_or("-".into()),
    ]
}

/// `writeEnabled` and `deleteEnabled`, as the WRITE and DELETE columns show them.
fn locks(a: &ChangeableAttributes) -> [String; 2] {
    [a.write_enabled.to_string(), a.delete_enabled.to_string()]
}

async fn show_manifests(a: ShowManifestsArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let manifests: Vec<Manifest> = client
        .get_json(&path(&a.repository, "/_manifests"), &())
        .await?;
    if a.output == OutputFormat::Json {
        return print_json(&manifests);
    }
    if a.detail {
        let rows: Vec<[String; 11]> = manifests.iter().map(manifest_row).collect();
        let header = [
            "DIGEST",
            "TAGS",
            "MEDIA TYPE",
            "PLATFORMS",
            "SIZE",
            "CREATED",
            "LAST UPDATED",
            "WRITE",
            "DELETE",
            "RUN",
            "FINDINGS",
        ];
        print!("{}", table(header, &rows));
    } else {
        let rows: Vec<[String; 3]> = manifests
            .iter()
            .map(|m| {
                let [digest, tags, .., updated, _, _, _, _] = manifest_row(m);
                [digest, tags, updated]
            })
            .collect();
        print!("{}", table(["DIGEST", "TAGS", "LAST UPDATED"], &rows));
    }
    Ok(())
}

fn manifest_row(m: &Manifest) -> [String; 11] {
    let or_dash = |s: String| if s.is_empty() { "-".into() } else { s };
    let [write, delete] = locks(&m.changeable_attributes);
    [
        m.digest.clone(),
        or_dash(m.tags.join(",")),
        m.media_type.clone(),
        or_dash(m.platforms.join(",")),
        human_size(m.image_size),
        timestamp(m.created_time),
        timestamp(m.last_update_time),
        write,
        delete,
        m.run_id.clone().unwrap_or("-".into()),
        m.findings.as_ref().map_or("-".into(), findings_cell),
    ]
}

/// `C2 H5 M1 L0 U3`: a stored report's findings by severity (CVSS "none" findings are left
/// out; the JSON output has them).
fn findings_cell(t: &SeverityTotals) -> String {
    format!(
        "C{} H{} M{} L{} U{}",
        t.critical, t.high, t.medium, t.low, t.unknown
    )
}

async fn show(a: ShowArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let image = Image::parse(&a.image)?;
    let repo = image.repository();
    let Some(reference) = image.reference() else {
        let r: Repository = client.get_json(&path(repo, ""), &()).await?;
        if a.output == OutputFormat::Json {
            return print_json(&r);
        }
        let [write, delete] = locks(&r.changeable_attributes);
        let rows = [
            ("Repository:", r.name),
            ("Tags:", r.tag_count.to_string()),
            ("Manifests:", r.manifest_count.to_string()),
            ("Created:", timestamp(r.created_time)),
            ("Last updated:", timestamp(r.last_update_time)),
            ("Write enabled:", write),
            ("Delete enabled:", delete),
            ("Scan on push:", scan_on_push(r.scan_on_push)),
        ];
        rows.iter().for_each(|(k, v)| println!("{k:<15} {v}"));
        return Ok(());
    };
    let m: Manifest = client
        .get_json(&path(repo, &format!("/_manifests/{reference}")), &())
        .await?;
    if a.output == OutputFormat::Json {
        return print_json(&m);
    }
    let [digest, tags, media_type, platforms, size, created, updated, write, delete, run, findings] =
        manifest_row(&m);
    let rows = [
        ("Repository:", repo.to_string()),
        ("Digest:", digest),
        ("Tags:", tags),
        ("Media type:", media_type),
        ("Platforms:", platforms),
        ("Size:", size),
        ("Created:", created),
        ("Last updated:", updated),
        ("Pushed by run:", run),
        ("Write enabled:", write),
        ("Delete enabled:", delete),
        ("Findings:", findings),
    ];
    rows.iter().for_each(|(k, v)| println!("{k:<15} {v}"));
    Ok(())
}

async fn update(a: UpdateArgs) -> Result<(), CliError> {
    /// Whichever of repository, tag or manifest the server answers with: its attributes.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Updated {
        changeable_attributes: ChangeableAttributes,
        scan_on_push: Option<bool>,
    }
    let image = Image::parse(&a.image)?;
    let api_path = match &image {
        Image::Repository(r) => path(r, ""),
        Image::Tag(r, t) => path(r, &format!("/_tags/{t}")),
        Image::Digest(r, d) => path(r, &format!("/_manifests/{d}")),
    };
    let body = AttributesUpdate {
        write_enabled: a.write_enabled,
        delete_enabled: a.delete_enabled,
        scan_on_push: a.scan_on_push,
        ..AttributesUpdate::default()
    };
    let client = KilnClient::new(&a.server)?;
    let updated: serde_json::Value = client.patch_json(&api_path, &body).await?;
    if a.output == OutputFormat::Json {
        return print_json(&updated);
    }
    let Updated {
        changeable_attributes: attributes,
        scan_on_push: scanned,
    } = serde_json::from_value(updated)
        .map_err(|e| CliError::Server(format!("unexpected answer from the server: {e}")))?;
    let [write, delete] = locks(&attributes);
    println!("Updated {}", a.image);
    println!("{:<15} {write}", "Write enabled:");
    println!("{:<15} {delete}", "Delete enabled:");
    if matches!(image, Image::Repository(_)) {
        println!("{:<15} {}", "Scan on push:", scan_on_push(scanned));
    }
    Ok(())
}

/// A repository's scan-on-push setting in words.
fn scan_on_push(setting: Option<bool>) -> String {
    match setting {
        Some(true) => "true".into(),
        Some(false) => "false".into(),
        None => "the server's setting".into(),
    }
}

async fn untag(a: UntagArgs) -> Result<(), CliError> {
    let Image::Tag(repo, tag) = Image::parse(&a.image)? else {
        return Err(CliError::Input(format!(
            "untag takes repo:tag, not '{}'",
            a.image
        )));
    };
    let client = KilnClient::new(&a.server)?;
    let _: Deleted = client
        .delete_json(&path(&repo, &format!("/_tags/{tag}")))
        .await?;
    println!("Untagged {repo}:{tag}");
    Ok(())
}

async fn delete(a: DeleteArgs) -> Result<(), CliError> {
    let image = Image::parse(&a.image)?;
    let (what, api_path) = match &image {
        Image::Repository(r) => (format!("repository '{r}' with all its images"), path(r, "")),
        Image::Tag(r, reference) | Image::Digest(r, reference) => (
            format!("the manifest of '{}' and all tags pointing at it", a.image),
            path(r, &format!("/_manifests/{reference}")),
        ),
    };
    if !a.yes && !confirm(&format!("Delete {what}?"))? {
        return Err(CliError::Input("nothing deleted".into()));
    }
    let client = KilnClient::new(&a.server)?;
    let deleted: Deleted = client.delete_json(&api_path).await?;
    let repo = image.repository();
    for digest in &deleted.manifests {
        println!("Deleted {repo}@{digest}");
    }
    for tag in &deleted.tags {
        println!("Deleted {repo}:{tag}");
    }
    Ok(())
}

/// Asks on the terminal; without one, refuses rather than deleting unasked.
fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Input(format!(
            "{question} Pass --yes to confirm when not on a terminal; nothing deleted"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Input(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn gc(a: GcArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let report: GcReport = client
        .post_json("/api/registry/gc", &GcRequest { dry_run: a.dry_run })
        .await?;
    if a.output == OutputFormat::Json {
        return print_json(&report);
    }
    let verb = if report.dry_run {
        "Would delete"
    } else {
        "Deleted"
    };
    println!(
        "{verb} {} ({}) and {}",
        count(report.blobs_deleted, "blob", "blobs"),
        human_size(report.bytes_freed),
        count(
            report.uploads_removed,
            "abandoned upload",
            "abandoned uploads"
        ),
    );
    if let Some(until) = report.kept_until.filter(|_| report.blobs_kept > 0) {
        let (n, are) = match report.blobs_kept {
            1 => ("1 unreferenced blob is".to_string(), "was"),
            n => (format!("{n} unreferenced blobs are"), "were"),
        };
        println!(
            "{n} younger than the {} grace period and {are} kept; run again after {}",
            format_duration(Duration::from_secs(report.grace_secs)),
            timestamp(until)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_parse_like_docker_references() {
        let p = |s: &str| Image::parse(s).ok();
        assert_eq!(p("app/web"), Some(Image::Repository("app/web".into())));
        assert_eq!(
            p("app/web:v1"),
            Some(Image::Tag("app/web".into(), "v1".into()))
        );
        assert_eq!(
            p("app@sha256:abc"),
            Some(Image::Digest("app".into(), "sha256:abc".into()))
        );
        assert_eq!(p("app:"), None);
        assert_eq!(p("app@md5:x"), None);
        assert_eq!(p(""), None);
    }
}
