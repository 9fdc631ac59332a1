//! Types on the wire between the Kiln server, its workers and the CLI.
//!
//! `kiln-worker` sits at the bottom of the dependency graph (the server embeds it), so the
//! shared vocabulary lives here and every side serializes through one definition.
//! Validated newtypes deserialize through `try_from`, so bad input cannot bypass validation.

mod build;
mod builtin;
mod errors;
mod ids;
mod job;
mod limits;
mod platform;
mod scan;
mod secret;
mod sizes;
mod worker;

pub use crate::image_ref::{ImageRef, ImageRefError};
pub use build::{redact_url, BuildSpec, ContextSource, ContextStats, OutputImage, PlatformDigest};
pub use builtin::{builtin_command, Builtin};
pub use errors::{
    ApiErrorBody, ApiErrorDetail, LOGIN_HINT, LOG_GAP, STALE_ATTEMPT, UPGRADE_REQUIRED,
};
pub use ids::{Digest, DigestError, RunId, RunIdError, RunStatus, RunStatusError};
pub use job::{
    BaseImage, BuildStep, CmdStep, DeferredFile, Job, JobKind, NetworkSpec, PurgeCounts, PurgeJob,
    PushStep, Step, StepAction, StepState, StepStatus, StepType, StepsJob, StepsUpdate,
    VolumeMount, VolumeSpec, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
pub use limits::{
    check_build_args, ContextLimits, EXPANSION_FLOOR, MAX_BUILD_ARGS, MAX_BUILD_ARGS_TOTAL,
    MAX_BUILD_ARG_NAME, MAX_BUILD_ARG_VALUE,
};
pub use platform::{Platform, PlatformError, PlatformSet};
pub use scan::{
    DatabaseState, Finding, Level, ReportChanges, ScanAnswer, ScanJob, ScanReport, ScanTarget,
    ScanUpload, SeverityTotals, SourceState, SCANNER_VERSION,
};
pub use secret::{RegistryCredential, Secret};
pub use sizes::{count, human_size, human_size_over, human_transfer};
pub use worker::{
    Heartbeat, HeartbeatReply, Lease, LeaseRequest, LogAppendReply, Outcome, ReturnRun, RunResult,
    SourceReply, SourceResolved, WorkerInfo,
};
