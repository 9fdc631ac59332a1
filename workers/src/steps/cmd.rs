//! `cmd` steps: a container on the run's network, named after the step, with `/workspace`
//! and the run's Docker credentials mounted. Never the Docker socket.

use super::workspace::{DOCKER_CONFIG_DIR, WORKSPACE_DIR};
use super::EngineSteps;
use crate::engine::{ContainerSpec, Engine};
use crate::executor::{AttemptEnd, StepError, StepOutput};
use crate::protocol::{CmdStep, Step};

impl<E: Engine> EngineSteps<'_, E> {
    fn container_spec(&self, step: &Step, cmd: &CmdStep) -> Result<ContainerSpec, StepError> {
        let ws = self.workspace;
        let mut mounts = vec![
            (ws.volume.clone(), WORKSPACE_DIR.to_string()),
            (ws.docker_config.clone(), format!("{DOCKER_CONFIG_DIR}:ro")),
        ];
        for m in &cmd.volume_mounts {
            let volume = ws.volumes.get(&m.name).ok_or_else(|| {
                StepError::Failed(format!(
                    "step {} mounts volume {}, which the task does not declare",
                    step.id, m.name
                ))
            })?;
            mounts.push((volume.clone(), m.mount_path.clone()));
        }
        // The step's own env comes last, so it may point DOCKER_CONFIG elsewhere.
        let mut env = vec![format!("DOCKER_CONFIG={DOCKER_CONFIG_DIR}")];
        env.extend(step.env.iter().cloned());
        let network = ws.network_of(step);
        Ok(ContainerSpec {
            name: ws.container_of(step),
            image: cmd.image.clone(),
            cmd: cmd.args.clone(),
            entrypoint: cmd.entry_point.clone().map(|e| vec![e]),
            env,
            user: cmd.user.clone(),
            workdir: (!step.disable_working_directory_override)
                .then(|| step.working_directory.clone()),
            mounts,
            aliases: if network.is_some() {
                vec![step.id.clone()]
            } else {
                Vec::new()
            },
            network,
            ports: cmd.ports.clone(),
            expose: cmd.expose.clone(),
            privileged: cmd.privileged,
            labels: ws.labels.clone(),
        })
    }

    pub(super) async fn cmd(
        &self,
        step: &Step,
        cmd: &CmdStep,
        output: &StepOutput,
    ) -> Result<AttemptEnd, StepError> {
        let built_here = self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&cmd.image);
        if !built_here && (cmd.pull || !self.engine.has_image(&cmd.image).await?) {
            self.engine
                .pull(&cmd.image, self.credential_for(&cmd.image), output.log())
                .await?;
        }
        let spec = self.container_spec(step, cmd)?;
        // A retry or repeat reuses the name: the previous attempt's container goes first.
        let again = !self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone());
        if again {
            self.engine.remove_container(&spec.name).await;
        }
        output
            .log()
            .line(format!("Launching container with name: {}", step.id));
        self.engine.create_container(&spec).await?;
        self.engine.start_container(&spec.name).await?;
        if step.detach {
            return Ok(AttemptEnd::default());
        }
        let code = self
            .engine
            .wait_container(&spec.name, &|line| output.line(line))
            .await?;
        if !step.keep {
            self.engine.remove_container(&spec.name).await;
        }
        Ok(AttemptEnd {
            exit_code: Some(code),
            ..AttemptEnd::default()
        })
    }
}
