//! `/api/registry/repositories/…`: list, show, lock (PATCH) and delete repositories, tags and
//! manifests. Repository names contain slashes, so everything after `repositories/` is one
//! path that `Target::parse` splits at the `_tags` or `_manifests` segment (no repository
//! name component may start with `_`); ACR's `/acr/v1/…` paths split the same way.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::App;
use crate::access::Principal;
use crate::wire::registry::{AttributesUpdate, Deleted, TagsQuery};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/registry/repositories", get(list))
        .route(
            "/api/registry/repositories/{*path}",
            get(show).patch(update).delete(delete),
        )
}

/// What a path under `/api/registry/repositories/` or `/acr/v1/` names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    Repository(String),
    Tags(String),
    Tag(String, String),
    Manifests(String),
    /// A manifest by digest or by tag.
    Manifest(String, String),
}

impl Target {
    /// `None`: the path names no registry resource.
    pub(super) fn parse(path: &str) -> Option<Target> {
        let path = path.trim_start_matches('/');
        let Some((repo, rest)) = path.split_once("/_") else {
            return (!path.is_empty()).then(|| Target::Repository(path.to_string()));
        };
        let repo = repo.to_string();
        match rest.split_once('/') {
            None if rest == "tags" => Some(Target::Tags(repo)),
            None if rest == "manifests" => Some(Target::Manifests(repo)),
            Some(("tags", tag)) if !tag.is_empty() && !tag.contains('/') => {
                Some(Target::Tag(repo, tag.to_string()))
            }
            Some(("manifests", r)) if !r.is_empty() && !r.contains('/') => {
                Some(Target::Manifest(repo, r.to_string()))
            }
            _ => None,
        }
    }
}

fn target(path: &str) -> Result<Target, ApiError> {
    Target::parse(path).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no such registry resource '{}'",
            path.trim_start_matches('/')
        ))
    })
}

async fn list(State(app): State<App>, who: Principal) -> Result<Json<serde_json::Value>, ApiError> {
    let repositories = app.repositories.list(&who).await?;
    Ok(Json(serde_json::json!({ "repositories": repositories })))
}

async fn show(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
    ValidQuery(query): ValidQuery<TagsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let target = target(&path)?;
    let repos = &app.repositories;
    let value = match target {
        Target::Repository(r) => serde_json::to_value(repos.show(&who, &r).await?),
        Target::Tags(r) => serde_json::to_value(repos.tags(&who, &r, query.orderby).await?),
        Target::Tag(r, t) => serde_json::to_value(repos.tag(&who, &r, &t).await?),
        Target::Manifests(r) => serde_json::to_value(repos.manifests(&who, &r).await?),
        Target::Manifest(r, m) => serde_json::to_value(repos.manifest(&who, &r, &m).await?),
    };
    Ok(Json(value.map_err(|e| ApiError::Internal(e.to_string()))?))
}

/// Locking or unlocking a repository, a tag or a manifest (by digest or by one of its tags):
/// `{"writeEnabled": bool, "deleteEnabled": bool}`, either optional; answers the thing with
/// its new attributes.
async fn update(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
    ValidJson(body): ValidJson<AttributesUpdate>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let repos = &app.repositories;
    let value = match target(&path)? {
        Target::Repository(r) => {
            serde_json::to_value(repos.update_repository(&who, &r, &body).await?)
        }
        Target::Tag(r, t) => serde_json::to_value(repos.update_tag(&who, &r, &t, &body).await?),
        Target::Manifest(r, m) => {
            serde_json::to_value(repos.update_manifest(&who, &r, &m, &body).await?)
        }
        Target::Tags(_) | Target::Manifests(_) => {
            return Err(ApiError::BadRequest(
                "name a repository, a tag or a manifest to update".into(),
            ))
        }
    };
    Ok(Json(value.map_err(|e| ApiError::Internal(e.to_string()))?))
}

/// Deleting a repository, a manifest (by digest or by one of its tags: the manifest goes with
/// all its tags) or just one tag.
async fn delete(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let repos = &app.repositories;
    let deleted = match target(&path)? {
        Target::Repository(r) => repos.delete_repository(&who, &r).await?,
        Target::Tag(r, t) => repos.untag(&who, &r, &t).await?,
        Target::Manifest(r, m) => repos.delete_manifest(&who, &r, &m).await?,
        Target::Tags(_) | Target::Manifests(_) => {
            return Err(ApiError::BadRequest(
                "name a repository, a tag or a manifest to delete".into(),
            ))
        }
    };
    Ok(Json(deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_underscore_segment() {
        let t = Target::parse;
        assert_eq!(t("app/web"), Some(Target::Repository("app/web".into())));
        assert_eq!(t("app/web/_tags"), Some(Target::Tags("app/web".into())));
        assert_eq!(
            t("app/web/_tags/v1.2"),
            Some(Target::Tag("app/web".into(), "v1.2".into()))
        );
        assert_eq!(t("a/_manifests"), Some(Target::Manifests("a".into())));
        assert_eq!(
            t("a/_manifests/sha256:ab"),
            Some(Target::Manifest("a".into(), "sha256:ab".into()))
        );
        assert_eq!(t("a/_blobs"), None);
        assert_eq!(t("a/_tags/"), None);
        assert_eq!(t("a/_tags/x/y"), None);
        assert_eq!(t(""), None);
    }
}
