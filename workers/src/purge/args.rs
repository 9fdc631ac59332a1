//! `acr purge`'s flags: a clap [`PurgeArgs`] for `kiln purge`, and [`PurgeArgs::from_command`]
//! for the `acr purge …` / `kiln purge …` text of a `cmd` step.

use chrono::{DateTime, Utc};
use clap::Parser;

use super::duration::Ago;
use super::filter::Filter;
use super::plan::Policy;

/// ACR's ceiling on `--concurrency`.
pub const MAX_CONCURRENCY: i64 = 32;

/// A purge's arguments, exactly `acr purge`'s flags plus `--output`.
#[derive(Debug, Clone, clap::Args)]
pub struct PurgeArgs {
    /// Registry to purge (default: the run's registry).
    #[arg(short = 'r', long)]
    pub registry: Option<String>,
    /// `<repoRegex>:<tagRegex>`; the repository regex matches whole names, the tag regex
    /// anywhere in the tag (use ^…$). Repeatable.
    #[arg(
        short = 'f',
        long = "filter",
        required_unless_present = "untagged_only"
    )]
    pub filters: Vec<Filter>,
    /// Delete only what was last updated longer ago than this: `<days>d<duration>`, e.g.
    /// 7d, 2d3h, 1h30m, 0 (capped at 150 years).
    #[arg(
        long,
        required_unless_present = "untagged_only",
        allow_hyphen_values = true
    )]
    pub ago: Option<Ago>,
    /// Keep the N newest of the tags (and untagged manifests) that would be deleted.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub keep: usize,
    /// Also delete manifests left without tags.
    #[arg(long, conflicts_with = "untagged_only")]
    pub untagged: bool,
    /// Delete only manifests without tags; no tags are deleted and --filter is optional.
    #[arg(long)]
    pub untagged_only: bool,
    /// Print what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete locked tags and manifests (they are unlocked first).
    #[arg(long)]
    pub include_locked: bool,
    /// Deletions in flight at once (1-32; default: the number of CPUs).
    #[arg(long, allow_negative_numbers = true)]
    pub concurrency: Option<i64>,
    /// `text` (ACR's lines) or `json` (the plan and the result).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How a purge reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// ACR's lines.
    Text,
    /// One JSON document with the plan and the result.
    Json,
}

/// Whether and how untagged manifests are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UntaggedMode {
    /// Tags only (no `--untagged`).
    Keep,
    /// Tags, then manifests left untagged (`--untagged`).
    AlsoDelete,
    /// Untagged manifests only (`--untagged-only`).
    Only,
}

/// A purge command line that could not be read; the message names the flag.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The text is not valid shell words (an unclosed quote).
    #[error("cannot split the purge command into words: {0}")]
    Words(String),
    /// A flag is unknown, missing, repeated or has a bad value (clap's message).
    #[error("{0}")]
    Flags(String),
}

#[derive(Parser)]
#[command(name = "purge", no_binary_name = true, disable_help_subcommand = true)]
struct PurgeCommand {
    #[command(flatten)]
    args: PurgeArgs,
}

impl PurgeArgs {
    /// Reads the arguments after `purge`.
    pub fn from_words<I, S>(words: I) -> Result<PurgeArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        PurgeCommand::try_parse_from(words)
            .map(|command| command.args)
            .map_err(|e| ArgsError::Flags(e.render().to_string().trim_end().to_owned()))
    }

    /// Reads a `cmd` line: `Some` for `acr purge …` or `kiln purge …` (split as a shell
    /// would), `None` for any other command.
    pub fn from_command(line: &str) -> Result<Option<PurgeArgs>, ArgsError> {
        let words = shell_words::split(line).map_err(|e| ArgsError::Words(e.to_string()))?;
        match crate::protocol::builtin_command(&words) {
            Some(crate::protocol::Builtin::Purge(rest)) => Self::from_words(rest).map(Some),
            Some(crate::protocol::Builtin::Scan(_)) | None => Ok(None),
        }
    }

    /// The untagged-manifest mode the flags ask for.
    pub fn untagged_mode(&self) -> UntaggedMode {
        match (self.untagged, self.untagged_only) {
            (_, true) => UntaggedMode::Only,
            (true, false) => UntaggedMode::AlsoDelete,
            (false, false) => UntaggedMode::Keep,
        }
    }

    /// The deletions in flight at once, and ACR's message when the flag was out of range.
    pub fn concurrency(&self) -> (usize, Option<String>) {
        let default = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_CONCURRENCY as usize);
        match self.concurrency {
            None => (default, None),
            Some(n) if n <= 0 => (
                default,
                Some(format!(
                    "Specified concurrency value invalid. Set to default value: {default}"
                )),
            ),
            Some(n) if n > MAX_CONCURRENCY => (
                MAX_CONCURRENCY as usize,
                Some(format!(
                    "Specified concurrency value too large. Set to maximum value: {MAX_CONCURRENCY}"
                )),
            ),
            Some(n) => (n as usize, None),
        }
    }

    /// Warnings to print before anything else (a capped `--ago`, a clamped `--concurrency`).
    pub fn warnings(&self) -> Vec<String> {
        let ago = self.ago.and_then(|ago| ago.warning()).map(str::to_owned);
        ago.into_iter().chain(self.concurrency().1).collect()
    }

    /// The rules the plan applies, with the cutoff computed from `now`.
    pub fn policy(&self, now: DateTime<Utc>) -> Policy {
        Policy {
            filters: self.filters.clone(),
            cutoff: self.ago.unwrap_or(Ago::ZERO).cutoff(now),
            keep: self.keep,
            untagged: self.untagged_mode(),
            include_locked: self.include_locked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> PurgeArgs {
        PurgeArgs::from_command(line).unwrap().unwrap()
    }

    fn error(line: &str) -> String {
        PurgeArgs::from_command(line).unwrap_err().to_string()
    }

    #[test]
    fn acr_recipes_parse_unchanged() {
        let args = parse("acr purge --filter 'hello-world:.*' --untagged --ago 1d");
        assert_eq!(args.filters[0].as_str(), "hello-world:.*");
        assert_eq!(args.untagged_mode(), UntaggedMode::AlsoDelete);
        assert_eq!(args.ago.unwrap().as_nanos(), 24 * 3_600_000_000_000);
        let args = parse(
            "kiln purge -f 'app/.*:^dev-' -f \"lib:x\" --ago 2d3h --keep 5 --dry-run \
             --include-locked --concurrency 8 --registry 127.0.0.1:5000 --output json",
        );
        assert_eq!(args.filters.len(), 2);
        assert_eq!(
            (args.keep, args.dry_run, args.include_locked),
            (5, true, true)
        );
        assert_eq!(args.concurrency(), (8, None));
        assert_eq!(args.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(args.output, OutputFormat::Json);
        let only = parse("acr purge --untagged-only");
        assert_eq!(only.untagged_mode(), UntaggedMode::Only);
        assert!(only.filters.is_empty() && only.ago.is_none());
        assert_eq!(
            parse("acr purge --filter a:b --ago 0").untagged_mode(),
            UntaggedMode::Keep
        );
    }

    #[test]
    fn other_commands_are_not_purges() {
        for line in ["acr tag list", "docker purge", "echo acr purge", "acr", ""] {
            assert!(PurgeArgs::from_command(line).unwrap().is_none(), "{line}");
        }
        assert!(error("acr purge --filter 'a:b").contains("cannot split"));
    }

    #[test]
    fn errors_name_the_flag() {
        for (line, flag, why) in [
            ("acr purge --ago 1d", "--filter", "required"),
            ("acr purge --filter a:b", "--ago", "required"),
            (
                "acr purge --filter a --ago 1d",
                "--filter",
                "unable to correctly parse",
            ),
            ("acr purge --filter a: --ago 1d", "--filter", "missing tag"),
            ("acr purge --filter a:b --ago 1h2d", "--ago", "whole number"),
            ("acr purge --filter a:b --ago -1d", "--ago", "negative"),
            ("acr purge --filter a:b --ago 1d --keep -1", "--keep", "-1"),
            (
                "acr purge --filter a:b --ago 1d --keep x",
                "--keep",
                "invalid digit",
            ),
            (
                "acr purge --untagged --untagged-only",
                "--untagged-only",
                "cannot be used",
            ),
            (
                "acr purge --filter a:b --ago 1d --bogus",
                "--bogus",
                "unexpected",
            ),
            (
                "acr purge --filter a:b --ago 1d --concurrency x",
                "--concurrency",
                "invalid",
            ),
            (
                "acr purge --filter a:b --ago 1d --output yaml",
                "--output",
                "yaml",
            ),
        ] {
            let err = error(line);
            assert!(err.contains(flag) && err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn concurrency_is_clamped_with_acr_messages() {
        let zero = parse("acr purge --untagged-only --concurrency 0");
        let (n, message) = zero.concurrency();
        assert!((1..=32).contains(&n));
        assert_eq!(
            message.unwrap(),
            format!("Specified concurrency value invalid. Set to default value: {n}")
        );
        assert_eq!(
            parse("acr purge --untagged-only --concurrency -3")
                .concurrency()
                .0,
            n
        );
        let big = parse("acr purge --untagged-only --concurrency 100");
        assert_eq!(big.concurrency().0, 32);
        assert_eq!(
            big.warnings(),
            ["Specified concurrency value too large. Set to maximum value: 32"]
        );
        let capped = parse("acr purge --filter a:b --ago 99999999d");
        assert_eq!(capped.warnings(), [super::super::duration::CAP_WARNING]);
    }

    #[test]
    fn policy_cutoff_is_now_minus_ago_and_zero_for_untagged_only() {
        let now = Utc::now();
        assert_eq!(parse("acr purge --untagged-only").policy(now).cutoff, now);
        let policy = parse("acr purge -f a:b --ago 2d --keep 3").policy(now);
        assert_eq!(now - policy.cutoff, chrono::TimeDelta::days(2));
        assert_eq!(policy.keep, 3);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        PurgeCommand::command().debug_assert();
    }
}
