//! The key that seals secrets in the database: 32 random bytes in a file outside it
//! (`--secret-key-file`, default `<data-dir>/secret.key`), created with mode 0600 on the
//! first start.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A loaded key, or a new one to be written once the database accepted it.
pub struct SecretKey {
    pub path: PathBuf,
    pub bytes: [u8; 32],
    /// Made now: the file does not exist yet.
    pub created: bool,
}

impl SecretKey {
    /// Reads the key file, or makes a new key when there is none.
    pub fn load(path: &Path) -> anyhow::Result<SecretKey> {
        let (bytes, created) = match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "the secret key file {} holds {} bytes, not 32: it is not a Kiln secret key",
                        path.display(),
                        bytes.len()
                    )
                })?;
                (bytes, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::getrandom(&mut bytes)
                    .map_err(|e| anyhow::anyhow!("no randomness for a secret key: {e}"))?;
                (bytes, true)
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the secret key file {}", path.display()))
            }
        };
        Ok(SecretKey {
            path: path.to_path_buf(),
            bytes,
            created,
        })
    }

    /// Writes a new key (mode 0600, never over an existing file).
    pub fn persist(&self) -> anyhow::Result<()> {
        if !self.created {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&self.path)?;
            file.write_all(&self.bytes)?;
            file.sync_all()
        };
        write().with_context(|| format!("cannot write the secret key file {}", self.path.display()))
    }

    /// What to tell the operator when the database refuses the key.
    pub fn mismatch(&self) -> anyhow::Error {
        let path = self.path.display();
        if self.created {
            anyhow::anyhow!(
                "the secret key file {path} is missing, but this database holds secrets sealed \
                 with a key: restore that key file (or point --secret-key-file / \
                 KILN_SECRET_KEY_FILE at it)"
            )
        } else {
            anyhow::anyhow!(
                "the secret key in {path} does not open this database's secrets: start with the \
                 key file the database was sealed with (--secret-key-file / KILN_SECRET_KEY_FILE)"
            )
        }
    }
}
