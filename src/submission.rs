//! The rules a run request must meet, in one place: the server enforces them when it queues a
//! run, and `kiln build` checks the same ones before it packs or uploads anything, so a bad
//! tag or timeout fails in a second with the server's own message.

use std::collections::BTreeMap;

use chrono::Utc;
use kiln_worker::protocol::{check_build_args, ImageRef, PlatformSet};

use crate::template::{render, RunVars};
use crate::wire::SubmitLimits;

/// The longest run timeout a client may ask for, in seconds (8 hours, as ACR Tasks).
pub const MAX_TIMEOUT_SECS: u64 = 28_800;

/// The longest a run may ask to wait for a worker: a week, past which a queued run is
/// forgotten work rather than waiting work.
pub const MAX_QUEUE_TIMEOUT_SECS: u64 = 7 * 86_400;

/// The parts of a run request that can be checked without its context.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// Image name templates, as given.
    pub images: &'a [String],
    /// Whether the context is a git repository, which gives `<<.Run.Commit>>` a value.
    pub is_git: bool,
    pub platform: &'a PlatformSet,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub timeout_secs: Option<u64>,
    pub queue_timeout_secs: Option<u64>,
}

/// Checks everything in `opts`; the error is the message the client sees.
pub fn check(opts: &RunOptions<'_>, limits: &SubmitLimits) -> Result<(), String> {
    if let Some(t) = opts.timeout_secs {
        if !(limits.min_timeout_secs..=limits.max_timeout_secs).contains(&t) {
            return Err(format!(
                "invalid timeout {t}s: it must be between {} and {} seconds",
                limits.min_timeout_secs, limits.max_timeout_secs
            ));
        }
    }
    if let Some(t) = opts.queue_timeout_secs {
        if t > MAX_QUEUE_TIMEOUT_SECS {
            return Err(format!(
                "invalid queue timeout {t}s: it must be at most {MAX_QUEUE_TIMEOUT_SECS} seconds (7 days), or 0 for no limit"
            ));
        }
    }
    check_build_args(opts.build_args)?;
    if let Some(t) = opts.target {
        if t.is_empty() || t.contains(char::is_whitespace) {
            return Err(format!("invalid target stage '{t}'"));
        }
    }
    // The run's own ID and date are not known yet; any value checks the same names.
    let platform = opts.platform.first();
    let vars = RunVars {
        id: "ca1".into(),
        registry: Some(limits.default_registry.clone()),
        date: Utc::now(),
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        commit: opts.is_git.then(|| "0".repeat(40)),
        branch: opts.is_git.then(|| "main".into()),
        task_name: None,
        shared_volume: None,
    };
    render_images(opts.images, &vars, &limits.default_registry).map(drop)
}

/// Renders each image name and puts it in `default_registry` unless it names one; duplicates
/// are dropped.
pub fn render_images(
    templates: &[String],
    vars: &RunVars,
    default_registry: &str,
) -> Result<Vec<ImageRef>, String> {
    let mut images: Vec<ImageRef> = Vec::new();
    for template in templates {
        let name = render(template, vars).map_err(|e| e.to_string())?;
        let image = ImageRef::parse(&name).map_err(|e| e.to_string())?;
        if image.digest().is_some() {
            return Err(format!(
                "invalid image '{name}': a pushed image needs a tag, not a digest"
            ));
        }
        let image = image.with_default_registry(default_registry);
        if !images.contains(&image) {
            images.push(image);
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SubmitLimits {
        SubmitLimits {
            min_timeout_secs: 300,
            max_timeout_secs: MAX_TIMEOUT_SECS,
            default_registry: "127.0.0.1:8080".into(),
        }
    }

    fn check_images(images: &[&str], is_git: bool) -> Result<(), String> {
        let images: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        let opts = RunOptions {
            images: &images,
            is_git,
            platform: &PlatformSet::default(),
            build_args: &BTreeMap::new(),
            target: None,
            timeout_secs: None,
            queue_timeout_secs: None,
        };
        check(&opts, &limits())
    }

    #[test]
    fn git_variables_need_a_git_context() {
        assert_eq!(check_images(&["app:<<.Run.Commit>>"], true), Ok(()));
        let err = check_images(&["app:<<.Run.Commit>>"], false).unwrap_err();
        assert!(err.contains("not a git repository"), "{err}");
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(
            check_images(&["app:<<.Run.ID>>", "app:latest"], false),
            Ok(())
        );
        for bad in [
            "app:<<.Run.Nope>>",
            "App:v1",
            "app@sha256:abc",
            "app:<<.Run.ID",
        ] {
            assert!(check_images(&[bad], false).is_err(), "{bad}");
        }
    }
}
