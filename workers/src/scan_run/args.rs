//! `kiln scan`'s arguments: a clap [`ScanArgs`] for the CLI, and [`ScanArgs::from_words`] for
//! the words a run or a `cmd: kiln scan …` step carries (the server and the worker read them
//! the same way).

use clap::Parser;

use crate::image_ref::ImageRef;
use crate::protocol::Level;

/// What a scan reads and how it judges and reports it.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// Images to scan: `[host[:port]/]repo[:tag|@digest]` (`:latest` when neither is given).
    /// A host other than Kiln's own names that registry. An index is scanned for every
    /// platform.
    #[arg(value_name = "IMAGE", value_parser = parse_image)]
    pub images: Vec<ImageRef>,
    /// The registry of images named without a host (default: Kiln's own).
    #[arg(short = 'r', long)]
    pub registry: Option<String>,
    /// Scan every tagged manifest of Kiln's registry the run may pull (each digest once).
    #[arg(long, conflicts_with = "images")]
    pub all: bool,
    /// With --all: only repositories whose whole name matches this regular expression.
    #[arg(long = "filter", value_name = "REPO_REGEX")]
    pub filter: Option<String>,
    /// Fail (exit code 1) when a finding is at or above this severity: none, low, medium,
    /// high or critical.
    #[arg(long, value_name = "LEVEL", value_parser = parse_threshold)]
    pub severity_threshold: Option<Level>,
    /// Pass even when the database has no data for an ecosystem the image has packages of
    /// (those packages are then not known to be clean, and the log says so).
    #[arg(long)]
    pub allow_missing_db: bool,
    /// What the log ends with: `table` (a line per finding and totals by severity), `json`
    /// (the reports), `sarif` (SARIF 2.1.0) or `cyclonedx` (the SBOM of each image).
    #[arg(long, value_enum, default_value_t = ScanOutput::Table)]
    pub output: ScanOutput,
    /// Push each platform image's SBOM (`cyclonedx`, the default, or `spdx`) to its
    /// repository as an OCI referrer of the image; needs the push role there.
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, require_equals = true,
          default_missing_value = "cyclonedx")]
    pub attach_sbom: Option<SbomFormat>,
}

/// The SBOM format `--attach-sbom` pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    Cyclonedx,
    Spdx,
}

impl SbomFormat {
    /// The name the log uses.
    pub fn name(self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
    }

    /// The document's media type, the referrer's `artifactType`.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => "application/vnd.cyclonedx+json",
            SbomFormat::Spdx => "application/spdx+json",
        }
    }
}

/// How a scan's log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanOutput {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

/// Scan words that could not be read; the message names the flag or the image.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScanArgsError(String);

#[derive(Parser)]
#[command(name = "scan", no_binary_name = true, disable_help_subcommand = true)]
struct ScanCommand {
    #[command(flatten)]
    args: ScanArgs,
}

impl ScanArgs {
    /// Reads the arguments after `kiln scan`. Nothing to scan (no image, no `--all`) is an
    /// error too.
    pub fn from_words<I, S>(words: I) -> Result<ScanArgs, ScanArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let args = ScanCommand::try_parse_from(words)
            .map(|command| command.args)
            .map_err(|e| ScanArgsError(e.render().to_string().trim_end().to_owned()))?;
        args.check()?;
        Ok(args)
    }

    /// What clap cannot say: something to scan, and a filter that compiles.
    pub fn check(&self) -> Result<(), ScanArgsError> {
        if self.images.is_empty() && !self.all {
            return Err(ScanArgsError(
                "nothing to scan: name an image (REPO:TAG, REPO@DIGEST) or use --all".into(),
            ));
        }
        if self.filter.is_some() && !self.all {
            return Err(ScanArgsError(
                "--filter picks the repositories of --all: use it with --all".into(),
            ));
        }
        if let Some(registry) = &self.registry {
            ImageRef::validate_registry(registry)
                .map_err(|e| ScanArgsError(format!("--registry: {e}")))?;
        }
        self.repository_filter()?;
        Ok(())
    }

    /// `--filter` anchored to whole names (with lookarounds, as purge's filters); `None`
    /// without one.
    pub fn repository_filter(&self) -> Result<Option<fancy_regex::Regex>, ScanArgsError> {
        self.filter
            .as_deref()
            .map(|f| {
                fancy_regex::Regex::new(&format!("^(?:{f})$"))
                    .map_err(|e| ScanArgsError(format!("--filter {f:?}: {e}")))
            })
            .transpose()
    }

    /// The registries the images name explicitly, each once, in order.
    pub fn named_registries(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for registry in self.images.iter().filter_map(ImageRef::registry) {
            if !out.contains(&registry) {
                out.push(registry);
            }
        }
        out
    }
}

fn parse_image(text: &str) -> Result<ImageRef, String> {
    ImageRef::parse(text).map_err(|e| e.to_string())
}

fn parse_threshold(text: &str) -> Result<Level, String> {
    match text.parse::<Level>()? {
        Level::Unknown => {
            Err("unknown is not a threshold (use none, low, medium, high or critical)".into())
        }
        level => Ok(level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        shell_words::split(line).unwrap()
    }

    #[test]
    fn images_and_flags_are_read() {
        let args = ScanArgs::from_words(words(
            "127.0.0.1:5000/ci/tool:3 app/web@sha256:0000000000000000000000000000000000000000000000000000000000000000 --severity-threshold HIGH --output sarif --allow-missing-db",
        ))
        .unwrap();
        assert_eq!(args.images.len(), 2);
        assert_eq!(args.images[0].registry(), Some("127.0.0.1:5000"));
        assert_eq!(args.images[1].repository(), "app/web");
        assert_eq!(args.severity_threshold, Some(Level::High));
        assert_eq!(args.output, ScanOutput::Sarif);
        assert!(args.allow_missing_db);
        assert_eq!(args.named_registries(), ["127.0.0.1:5000"]);
        assert_eq!(args.attach_sbom, None);
    }

    #[test]
    fn attach_sbom_defaults_to_cyclonedx_and_leaves_images_alone() {
        let args = ScanArgs::from_words(words("--attach-sbom app:v1")).unwrap();
        assert_eq!(args.attach_sbom, Some(SbomFormat::Cyclonedx));
        assert_eq!(args.images.len(), 1);
        let args = ScanArgs::from_words(words("app:v1 --attach-sbom=spdx")).unwrap();
        assert_eq!(args.attach_sbom, Some(SbomFormat::Spdx));
    }

    #[test]
    fn all_takes_a_repository_filter() {
        let args = ScanArgs::from_words(words("--all --filter 'app/.*'")).unwrap();
        let filter = args.repository_filter().unwrap().unwrap();
        assert!(filter.is_match("app/web").unwrap());
        assert!(!filter.is_match("lib/app/web").unwrap());
    }

    #[test]
    fn bad_words_say_what_is_wrong() {
        for (line, said) in [
            ("", "nothing to scan"),
            ("--severity-threshold severe app:v1", "unknown severity"),
            ("--severity-threshold unknown app:v1", "not a threshold"),
            ("--output xml app:v1", "xml"),
            ("App:v1", "lowercase"),
            ("--filter 'app/.*' app:v1", "--all"),
            ("--all app:v1", "cannot be used"),
            ("--all --filter '('", "--filter"),
            ("--bogus app:v1", "--bogus"),
        ] {
            let error = ScanArgs::from_words(words(line)).unwrap_err().to_string();
            assert!(error.contains(said), "{line}: {error}");
        }
    }
}
