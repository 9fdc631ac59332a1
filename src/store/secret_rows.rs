//! The secret key's check value and the sealing of secrets that earlier versions stored in
//! plain text.

use kiln_worker::protocol::RunStatus;

use super::runs::from_row;
use super::sealed::RunSecrets;
use super::{Store, StoreError};

impl Store {
    /// Refuses a key that did not seal this database's check value; the first start stores it.
    pub(super) async fn check_key(&self) -> Result<(), StoreError> {
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT sealed FROM secret_key_check WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        match sealed {
            Some(sealed) if self.sealer.opens_check(&sealed) => Ok(()),
            Some(_) => Err(StoreError::WrongKey),
            None => {
                sqlx::query("INSERT INTO secret_key_check (id, sealed) VALUES (1, ?)")
                    .bind(self.sealer.check_value())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Runs stored before sealing keep their git token in `git_token` and their build-arg
    /// values and URL credentials in `spec`: seal them for runs still to be built, and drop
    /// them from finished ones, as finishing now does.
    pub(super) async fn seal_plain_secrets(&self) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE secrets IS NULL AND (git_token IS NOT NULL
                 OR EXISTS (SELECT 1 FROM json_each(spec, '$.buildArgs') WHERE value != '')
                 OR json_extract(spec, '$.context.url') LIKE '%@%')",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let mut run = from_row(row, &self.sealer)?;
            let secrets = RunSecrets::split_job(&mut run.job, run.git_token.as_ref())?;
            let secrets = match run.status {
                RunStatus::Queued | RunStatus::Running => secrets.seal(&self.sealer)?,
                _ => None,
            };
            let spec = run.job.to_json()?;
            sqlx::query("UPDATE runs SET spec = ?, secrets = ?, git_token = NULL WHERE seq = ?")
                .bind(spec)
                .bind(secrets)
                .bind(run.id.seq() as i64)
                .execute(&self.pool)
                .await?;
        }
        if !rows.is_empty() {
            tracing::info!(
                runs = rows.len(),
                "sealed secrets stored in plain text by an earlier version"
            );
        }
        Ok(())
    }
}
