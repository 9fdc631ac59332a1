//! Throwaway repositories made with the git CLI, for unit tests.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// A non-bare repository on branch `main` in its own temporary folder.
pub(crate) struct TestRepo {
    dir: TempDir,
}

impl TestRepo {
    pub(crate) fn new() -> Self {
        let repo = TestRepo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Runs git in the repository without the user's or system's config; returns stdout.
    pub(crate) fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=Kiln Test",
                "-c",
                "user.email=test@kiln.invalid",
            ])
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Writes `files` (path, contents), commits everything, returns the commit's SHA.
    pub(crate) fn commit(&self, files: &[(&str, &str)]) -> String {
        for (path, contents) in files {
            let path = self.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "change"]);
        self.git(&["rev-parse", "HEAD"])
    }
}
