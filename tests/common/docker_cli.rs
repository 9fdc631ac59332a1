//! The Docker CLI with a config dir of its own, so `docker login`s do not leak between tests
//! or into the machine's own config.

use tempfile::TempDir;

use super::CliRun;

pub struct Docker {
    config: TempDir,
}

impl Docker {
    pub fn new() -> Docker {
        Docker {
            config: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> CliRun {
        let out = tokio::process::Command::new("docker")
            .arg("--config")
            .arg(self.config.path())
            .args(args)
            .output()
            .await
            .unwrap();
        CliRun::from(out)
    }

    pub async fn login(&self, host: &str, user: &str, secret: &str) -> CliRun {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("docker")
            .arg("--config")
            .arg(self.config.path())
            .args(["login", host, "-u", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(secret.as_bytes()).await.unwrap();
        drop(stdin);
        CliRun::from(child.wait_with_output().await.unwrap())
    }
}
