//! `build` steps: a folder of the workspace, read back from the engine as a tar, built with
//! the same BuildKit path as a quick build (one build per platform), then tagged locally with
//! its image names so later `cmd` and `push` steps find it.

use super::base_images;
use super::workspace::WORKSPACE_DIR;
use super::EngineSteps;
use crate::engine::{BuildJob, Engine};
use crate::executor::{AttemptEnd, StepError, StepOutput};
use crate::protocol::{BuildSpec, BuildStep, ContextSource, Digest, OutputImage, Platform, Step};

/// The engine-local name of one platform's build of a step.
pub(super) fn local_name(execution: &str, step: &Step, platform: &Platform) -> String {
    format!(
        "kiln-build/{execution}-{}:{}",
        step.id.to_lowercase(),
        platform.to_string().replace('/', "-")
    )
}

impl<E: Engine> EngineSteps<'_, E> {
    pub(super) async fn build(
        &self,
        step: &Step,
        build: &BuildStep,
        output: &StepOutput,
    ) -> Result<AttemptEnd, StepError> {
        let ws = self.workspace;
        let spec = BuildSpec {
            // Unused by the engine: the context is the workspace folder streamed below.
            context: ContextSource::Upload {
                digest: Digest::from_sha256(&[0; 32]),
            },
            dockerfile: build.dockerfile.clone(),
            build_args: build.build_args.clone(),
            target: build.target.clone(),
            platforms: build.platforms.clone(),
            no_cache: build.no_cache,
            images: build.images.clone(),
            push: false,
        };
        let folder = build
            .context_dir
            .strip_prefix(WORKSPACE_DIR)
            .unwrap_or(&build.context_dir);
        let mut builds = Vec::new();
        for platform in build.platforms.iter() {
            if build.platforms.len() > 1 {
                output.log().line(format!("Building for {platform}"));
            }
            let context = self
                .engine
                .read_archive(&ws.volume, folder, &ws.labels)
                .await?;
            let job = BuildJob {
                run_id: ws.run,
                spec: spec.clone(),
                platform: platform.clone(),
                local_name: local_name(&ws.execution, step, platform),
                context,
                credentials: self.credentials.clone(),
            };
            builds.push(self.engine.build(job, output.log()).await?);
        }
        let first = builds.first().ok_or_else(|| {
            StepError::Failed(format!("build step {} names no platform", step.id))
        })?;
        for image in &build.images {
            self.engine
                .tag(&first.local_name, &image.to_string())
                .await?;
        }
        {
            let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
            for image in &build.images {
                built.insert(image.to_string(), builds.clone());
            }
        }
        let base_images =
            match base_images::dockerfile_text(self.engine, ws, folder, &build.dockerfile).await {
                Some(text) => {
                    base_images::base_images(&text, &build.build_args, &self.credentials).await
                }
                None => Vec::new(),
            };
        // What the step built, by the local image's id (its config digest): the registry's
        // manifest digest is known only once a push step pushed it.
        let mut images = Vec::new();
        if let Some(id) = self.engine.image_id(&first.local_name).await? {
            images.extend(build.images.iter().map(|image| OutputImage {
                registry: image.registry().map(str::to_string),
                repository: image.repository().to_string(),
                tag: image.tag_or_latest().to_string(),
                digest: id.clone(),
                platforms: Vec::new(),
            }));
        }
        Ok(AttemptEnd {
            images,
            base_images,
            ..AttemptEnd::default()
        })
    }
}
