//! STUB of helper R1's purge runner, with its exact signature, so the run plumbing compiles
//! and its tests run; the lead replaces this file with R1's real one at the merge.

use tokio_util::sync::CancellationToken;

use crate::protocol::RegistryCredential;

/// One purge to run: its arguments and the registry they apply to.
pub struct PurgeRequest {
    pub args: crate::purge::PurgeArgs,
    /// `host[:port]`.
    pub registry: String,
    /// Whether `registry` is Kiln's own.
    pub kiln: bool,
}

/// How a purge ended.
pub struct PurgeEnd {
    pub exit_code: i32,
    pub deleted_tags: usize,
    pub deleted_manifests: usize,
    pub message: Option<String>,
}

/// STUB: logs what it was asked and deletes nothing.
pub async fn run_purge(
    req: &PurgeRequest,
    credentials: &[RegistryCredential],
    log: &(dyn Fn(String) + Sync),
    cancel: &CancellationToken,
) -> PurgeEnd {
    let _ = (credentials, cancel);
    log(format!(
        "STUB purge of {} (Kiln's registry: {}): filters {:?}, dry run {}",
        req.registry,
        req.kiln,
        req.args
            .filters
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect::<Vec<_>>(),
        req.args.dry_run
    ));
    PurgeEnd {
        exit_code: 0,
        deleted_tags: 0,
        deleted_manifests: 0,
        message: None,
    }
}
