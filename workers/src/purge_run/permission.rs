//! Before a purge of Kiln's registry deletes anything, it asks Kiln's token server (Docker's
//! token protocol, with the run's credentials) for `repository:<name>:delete` on every
//! repository the plan deletes from, and reads the `access` claim of the token it gets: the
//! server grants only what the credentials allow, so a repository missing there is one the
//! purge may not delete from, and the purge fails before its first deletion instead of
//! halfway. Kiln signs the token, so the worker reads the claim without verifying it: the
//! registry verifies it on every deletion anyway.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::registry_http::RegistryHttp;

/// Scopes asked per token request, so the query stays short.
const SCOPES_PER_REQUEST: usize = 50;

/// `Err` names the first repository of `repositories` the credentials may not delete in.
pub async fn check_delete(http: &RegistryHttp, repositories: &[&str]) -> Result<(), String> {
    if repositories.is_empty() {
        return Ok(());
    }
    let cannot_ask = |e: String| format!("cannot check the delete permission: {e}");
    let Some((realm, service)) = http
        .bearer_challenge()
        .await
        .map_err(|e| cannot_ask(e.to_string()))?
    else {
        return Err(cannot_ask("the registry asks for no token".into()));
    };
    for chunk in repositories.chunks(SCOPES_PER_REQUEST) {
        let scope: Vec<String> = chunk
            .iter()
            .map(|r| format!("repository:{r}:delete"))
            .collect();
        let token = http
            .fetch_token(&realm, service.as_deref(), &scope.join(" "))
            .await
            .map_err(|e| cannot_ask(e.to_string()))?;
        let granted = deletable(&token).map_err(cannot_ask)?;
        if let Some(missing) = chunk.iter().find(|r| !granted.contains(**r)) {
            return Err(format!("no delete permission on repository {missing}"));
        }
    }
    Ok(())
}

/// The repositories a registry token's `access` claim grants `delete` on.
fn deletable(token: &str) -> Result<HashSet<String>, String> {
    #[derive(Deserialize)]
    struct Access {
        #[serde(rename = "type")]
        kind: String,
        name: String,
        actions: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        access: Vec<Access>,
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("the token server's token is not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("the token's payload is not base64url: {e}"))?;
    let claims: Claims =
        serde_json::from_slice(&bytes).map_err(|e| format!("the token's claims: {e}"))?;
    Ok(claims
        .access
        .into_iter()
        .filter(|a| a.kind == "repository" && a.actions.iter().any(|x| x == "delete" || x == "*"))
        .map(|a| a.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn the_access_claim_says_where_delete_was_granted() {
        let token = jwt(r#"{"iss":"kiln","use":"registry","access":[
                {"type":"repository","name":"app/web","actions":["delete"]},
                {"type":"repository","name":"app/api","actions":["pull"]},
                {"type":"registry","name":"catalog","actions":["*"]}],"iat":1,"exp":2}"#);
        let granted = deletable(&token).unwrap();
        assert_eq!(granted, HashSet::from(["app/web".to_owned()]));
        assert!(deletable(&jwt(r#"{"iat":1}"#)).unwrap().is_empty());
        assert!(deletable("opaque").unwrap_err().contains("not a JWT"));
    }
}
