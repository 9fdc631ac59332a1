//! `push` steps: images built by earlier build steps of the run, each up to 3 attempts with
//! backoff (one platform: the image; several: an image index).

use std::time::Duration;

use super::EngineSteps;
use crate::engine::Engine;
use crate::executor::{AttemptEnd, StepError, StepOutput};
use crate::protocol::{Outcome, PushStep};
use crate::publish;

const PUSH_ATTEMPTS: u32 = 3;

impl<E: Engine> EngineSteps<'_, E> {
    pub(super) async fn push(
        &self,
        push: &PushStep,
        output: &StepOutput,
    ) -> Result<AttemptEnd, StepError> {
        let mut end = AttemptEnd::default();
        for image in &push.images {
            let builds = self
                .built
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&image.to_string())
                .cloned()
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "image {image} was not built by an earlier step of this run"
                    ))
                })?;
            let mut attempt = 1;
            let pushed = loop {
                output
                    .log()
                    .line(format!("Pushing image: {image}, attempt {attempt}"));
                let result = publish::publish(
                    self.engine,
                    &builds,
                    std::slice::from_ref(image),
                    &self.credentials,
                    output.log(),
                )
                .await;
                match result {
                    Ok(pushed) => break pushed,
                    Err((outcome, message)) if attempt >= PUSH_ATTEMPTS => {
                        return Err(match outcome {
                            Outcome::Failed => StepError::Failed(message),
                            _ => StepError::Infrastructure(message),
                        })
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                        attempt += 1;
                    }
                }
            };
            end.images.extend(pushed);
        }
        Ok(end)
    }
}
