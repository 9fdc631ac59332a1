//! The base-image trigger's part of `kiln task create|update|show`.

use clap::Args;

use crate::wire::base_images::BaseImageTriggerType;
use crate::wire::tasks::Task;

/// `--base-image-trigger-enabled` and `--base-image-trigger-type`, as `az acr task` takes them.
#[derive(Debug, Args)]
pub struct BaseImageTriggerArgs {
    /// Run the task again when a base image of its last successful run moves to a new digest
    /// (default: true).
    #[arg(long, value_name = "true|false")]
    pub base_image_trigger_enabled: Option<bool>,
    /// Which bases: Runtime (the last stage's, default) or All (every stage's).
    #[arg(long, value_name = "Runtime|All")]
    pub base_image_trigger_type: Option<BaseImageTriggerType>,
}

/// `task show`'s lines for the trigger and the tracked base images with their digests.
pub fn print_base_images(t: &Task, field: impl Fn(&str, String)) {
    let trigger = &t.base_image_trigger;
    field(
        "Base trigger:",
        match trigger.enabled {
            true => format!("enabled ({})", trigger.trigger_type),
            false => "disabled".into(),
        },
    );
    for (i, base) in t.base_images.iter().enumerate() {
        let digest = base.digest.as_deref().unwrap_or("(unresolved)");
        let runtime = if base.runtime { " (runtime)" } else { "" };
        field(
            if i == 0 { "Base images:" } else { "" },
            format!("{}@{digest}{runtime}", base.reference),
        );
    }
}
