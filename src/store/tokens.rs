//! The `tokens` and `signing_keys` tables. Roles and patterns are kept as the strings the
//! service validated; the service parses them back.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{Store, StoreError};

/// A token as stored, without its secret hash. Times are Unix milliseconds.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub repositories: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// What inserting a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    NameTaken,
}

const COLUMNS: &str = "id, name, roles, repositories, created_at, expires_at, last_used_at";

fn from_row(row: &SqliteRow) -> Result<TokenRow, StoreError> {
    let list = |column: &str| -> Result<Vec<String>, StoreError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    };
    Ok(TokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        roles: list("roles")?,
        repositories: list("repositories")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

async fn insert(
    conn: &mut sqlx::SqliteConnection,
    token: &TokenRow,
    secret_hash: &str,
) -> Result<Inserted, StoreError> {
    let result = sqlx::query(
        "INSERT INTO tokens (id, name, roles, repositories, secret_hash, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&token.id)
    .bind(&token.name)
    .bind(json(&token.roles))
    .bind(json(&token.repositories))
    .bind(secret_hash)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(Inserted::Created),
        // The secret hash is unique too, but 256 random bits do not collide: a conflict is the name.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Inserted::NameTaken),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    pub async fn insert_token(
        &self,
        token: &TokenRow,
        secret_hash: &str,
    ) -> Result<Inserted, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, token, secret_hash).await
    }

    /// Replaces the token of the same name, if any, in one transaction: the old secret stops
    /// working as the new one starts.
    pub async fn replace_token(
        &self,
        token: &TokenRow,
        secret_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tokens WHERE name = ?")
            .bind(&token.name)
            .execute(&mut *tx)
            .await?;
        insert(&mut tx, token, secret_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE secret_hash = ?"
        ))
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn token_by_id(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Whether a token was deleted.
    pub async fn delete_token(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether an unexpired token holds `role`.
    pub async fn token_with_role_exists(&self, role: &str, now: i64) -> Result<bool, StoreError> {
        let found: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tokens, json_each(tokens.roles)
                            WHERE json_each.value = ? AND (expires_at IS NULL OR expires_at > ?))",
        )
        .bind(role)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(found != 0)
    }

    pub async fn touch_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The signing key, storing `candidate` first if there is none yet. Several nodes starting
    /// at once all end up with the one key that won.
    pub async fn signing_key(&self, candidate: &[u8], now: i64) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO signing_keys (id, key, created_at) VALUES (1, ?, ?)")
            .bind(candidate)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT key FROM signing_keys WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
