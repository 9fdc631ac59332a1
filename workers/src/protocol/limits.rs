//! Bounds on what a client may send: the size of a build context archive, once packed and
//! once unpacked, and the build arguments of a run. The server enforces them and sends the
//! context limits to workers in each lease, so a remote tarball is held to the same limits
//! as an upload; the CLI checks build arguments before it uploads anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sizes::{human_size, human_size_over};

/// Limits on a build context archive, from `kiln serve --max-context-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextLimits {
    /// Largest archive as sent (gzip-compressed or not), in bytes.
    pub max_size: u64,
    /// Largest unpacked size in bytes: of the decompressed tar stream, and of the sum of the
    /// sizes its entries declare (so a huge or sparse entry is refused before it is read).
    pub max_unpacked_size: u64,
    /// Largest ratio of decompressed to compressed bytes, applied once the decompressed
    /// stream passes [`EXPANSION_FLOOR`].
    pub max_expansion: u64,
}

/// Below this many decompressed bytes the expansion ratio is not checked: a small context
/// of text compresses very well and is harmless anyway.
pub const EXPANSION_FLOOR: u64 = 64 << 20;

/// Unpacked contexts may be this many times `--max-context-size` unless set otherwise:
/// source trees gzip to about a quarter of their size, so a context near the upload limit
/// still unpacks, while 10 GiB of zeros squeezed into 10 MB does not.
pub const DEFAULT_UNPACKED_FACTOR: u64 = 4;

impl ContextLimits {
    /// The limits with the unpacked size derived from `max_size`.
    pub fn derived(max_size: u64, max_unpacked_size: Option<u64>, max_expansion: u64) -> Self {
        ContextLimits {
            max_size,
            max_unpacked_size: max_unpacked_size
                .unwrap_or_else(|| max_size.saturating_mul(DEFAULT_UNPACKED_FACTOR)),
            max_expansion,
        }
    }
}

impl Default for ContextLimits {
    /// `kiln serve`'s defaults; also what a worker applies when its server sends none.
    fn default() -> Self {
        ContextLimits::derived(2 << 30, None, 100)
    }
}

/// Longest build argument name, in bytes.
pub const MAX_BUILD_ARG_NAME: usize = 256;
/// Longest build argument value, in bytes.
pub const MAX_BUILD_ARG_VALUE: usize = 64 << 10;
/// Most build arguments in one run.
pub const MAX_BUILD_ARGS: usize = 1024;
/// Largest sum of the lengths of all build argument names and values, in bytes.
///
/// Docker's API takes build arguments as one JSON-encoded query parameter of `POST /build`,
/// and its HTTP server refuses a request line and headers over 1 MiB together
/// (Go's `http.DefaultMaxHeaderBytes`). Percent-encoding can triple every byte: 3 × 256 KiB
/// leaves a quarter of that for the JSON syntax, the other parameters and the headers.
pub const MAX_BUILD_ARGS_TOTAL: usize = 256 << 10;

/// Checks build arguments against the limits above and Docker's naming rules; the error
/// names the offending argument.
pub fn check_build_args(args: &BTreeMap<String, String>) -> Result<(), String> {
    if args.len() > MAX_BUILD_ARGS {
        return Err(format!(
            "too many build arguments: {}, the limit is {MAX_BUILD_ARGS}",
            args.len()
        ));
    }
    let mut total = 0usize;
    for (name, value) in args {
        if name.is_empty() || name.contains('=') || name.contains(char::is_whitespace) {
            return Err(format!("invalid build argument name '{name}'"));
        }
        if name.len() > MAX_BUILD_ARG_NAME {
            let shown: String = name.chars().take(40).collect();
            return Err(format!(
                "build argument name '{shown}…' is {} bytes long, the limit is {MAX_BUILD_ARG_NAME}",
                name.len()
            ));
        }
        if value.len() > MAX_BUILD_ARG_VALUE {
            return Err(format!(
                "build argument '{name}' has a {} value, the limit is {}",
                human_size_over(value.len() as u64, MAX_BUILD_ARG_VALUE as u64),
                human_size(MAX_BUILD_ARG_VALUE as u64)
            ));
        }
        total += name.len() + value.len();
    }
    if total > MAX_BUILD_ARGS_TOTAL {
        return Err(format!(
            "build arguments total {}, the limit is {}",
            human_size_over(total as u64, MAX_BUILD_ARGS_TOTAL as u64),
            human_size(MAX_BUILD_ARGS_TOTAL as u64)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn build_args_within_limits_pass() {
        let value = "v".repeat(MAX_BUILD_ARG_VALUE);
        let name = "N".repeat(MAX_BUILD_ARG_NAME);
        assert_eq!(check_build_args(&args(&[(&name, value)])), Ok(()));
    }

    #[test]
    fn build_args_over_limits_are_named() {
        let long = "v".repeat(MAX_BUILD_ARG_VALUE + 1);
        let err = check_build_args(&args(&[("BIG", long)])).unwrap_err();
        assert_eq!(
            err,
            "build argument 'BIG' has a 65537 B value, the limit is 64 KiB"
        );

        let name = "N".repeat(MAX_BUILD_ARG_NAME + 1);
        let err = check_build_args(&args(&[(&name, String::new())])).unwrap_err();
        assert!(err.contains("257 bytes long"), "{err}");

        let value = "v".repeat(MAX_BUILD_ARG_VALUE);
        let many: Vec<(String, String)> =
            (0..5).map(|i| (format!("A{i}"), value.clone())).collect();
        let many = many.into_iter().collect();
        let err = check_build_args(&many).unwrap_err();
        assert!(err.contains("build arguments total"), "{err}");

        let count: BTreeMap<String, String> = (0..=MAX_BUILD_ARGS)
            .map(|i| (format!("A{i}"), String::new()))
            .collect();
        assert!(check_build_args(&count).unwrap_err().contains("too many"));
    }

    #[test]
    fn build_arg_names_follow_docker() {
        for bad in ["", "A=B", "A B"] {
            let err = check_build_args(&args(&[(bad, "v".into())])).unwrap_err();
            assert!(err.starts_with("invalid build argument name"), "{err}");
        }
    }

    #[test]
    fn unpacked_limit_defaults_to_a_multiple_of_the_upload_limit() {
        let limits = ContextLimits::derived(1 << 20, None, 100);
        assert_eq!(limits.max_unpacked_size, 4 << 20);
        assert_eq!(ContextLimits::derived(1, Some(7), 3).max_unpacked_size, 7);
    }
}
