//! ACR's registry metadata API on the registry host, as `acr purge` calls it:
//! `/acr/v1/<name>[/_tags[/<tag>]|/_manifests[/<digest>]]`. GET needs pull; PATCH
//! `{"writeEnabled", "deleteEnabled"}` (locks) and DELETE of a tag or a manifest need delete.
//! Paths split as the management API's do (`Target`); credentials are the registry's (the
//! middleware treats `/acr/` like `/v2/`), and errors are OCI envelopes. Lists page with `n`
//! (default 100, at most 1000) and `last`, and a `Link` header names the next page.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::discovery::with_link;
use super::error::{header_value, V2Error};
use super::repo;
use crate::access::Principal;
use crate::api::auth::registry_host;
use crate::api::oci_error::OciError;
use crate::api::repositories::Target;
use crate::api::App;
use crate::service::locks::LockScope;
use crate::service::registry::{parse_digest, Reference, RegistryError, Tag, DEFAULT_PAGE};
use crate::wire::acr::{AcrAttributes, AcrManifestList, AcrRepository, AcrTagList};
use crate::wire::registry::{AttributesUpdate, TagOrder};

pub(super) fn routes() -> Router<App> {
    Router::new().route("/acr/v1/{*path}", get(show).patch(update).delete(delete))
}

async fn show(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let query = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let last = query
        .get("last")
        .map(String::as_str)
        .filter(|l| !l.is_empty());
    let registry = registry_host(&app, &headers);
    let reg = &app.registry;
    let resp = match target(&path)? {
        Target::Repository(r) => {
            let r = reg.repository_details(&who, &repo(&r)?).await?;
            Json(AcrRepository {
                registry,
                image_name: r.name,
                created_time: r.created_time,
                last_update_time: r.last_update_time,
                manifest_count: r.manifest_count,
                tag_count: r.tag_count,
                changeable_attributes: r.changeable_attributes,
            })
            .into_response()
        }
        Target::Tags(r) => {
            let repo = repo(&r)?;
            let (sort, orderby) = order(query.get("orderby"))?;
            let n = page_size(&query)?;
            let page = reg.tag_details(&who, &repo, sort, last, n).await?;
            let link = page.next.map(|l| next_link(&uri, &l, n, orderby));
            let body = AcrTagList {
                registry,
                image_name: repo.to_string(),
                tags: page.items,
            };
            with_link(Json(body).into_response(), link)
        }
        Target::Tag(r, t) => {
            let repo = repo(&r)?;
            let tag = reg.tag_detail(&who, &repo, &t).await?;
            let body = serde_json::json!({
                "registry": registry, "imageName": repo.as_str(), "tag": tag,
            });
            Json(body).into_response()
        }
        Target::Manifests(r) => {
            let repo = repo(&r)?;
            let n = page_size(&query)?;
            let page = reg.manifest_details(&who, &repo, last, n).await?;
            let link = page.next.map(|l| next_link(&uri, &l, n, None));
            let body = AcrManifestList {
                registry,
                image_name: repo.to_string(),
                manifests: page.items,
            };
            with_link(Json(body).into_response(), link)
        }
        Target::Manifest(r, d) => {
            let repo = repo(&r)?;
            let digest = parse_digest(&d)?;
            let manifest = reg.manifest_detail(&who, &repo, digest.as_str()).await?;
            let body = serde_json::json!({
                "registry": registry, "imageName": repo.as_str(), "manifest": manifest,
            });
            Json(body).into_response()
        }
    };
    Ok(resp)
}

/// Locks or unlocks the repository, a tag or a manifest (by digest); answers
/// `{"changeableAttributes": …}` as they now are.
async fn update(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
    body: Bytes,
) -> Result<Json<AcrAttributes>, V2Error> {
    let update: AttributesUpdate = serde_json::from_slice(&body).map_err(|e| {
        RegistryError::Unsupported(format!(
            "expected {{\"writeEnabled\": bool, \"deleteEnabled\": bool}}: {e}"
        ))
    })?;
    let reg = &app.registry;
    let attributes = match target(&path)? {
        Target::Repository(r) => {
            reg.set_locks(&who, &repo(&r)?, LockScope::Repository, &update)
                .await?
        }
        Target::Tag(r, t) => {
            reg.set_locks(&who, &repo(&r)?, LockScope::Tag(&t), &update)
                .await?
        }
        Target::Manifest(r, d) => {
            let digest = parse_digest(&d)?;
            let scope = LockScope::Manifest(digest.as_str());
            reg.set_locks(&who, &repo(&r)?, scope, &update).await?
        }
        Target::Tags(_) | Target::Manifests(_) => return Err(not_allowed()),
    };
    Ok(Json(AcrAttributes {
        changeable_attributes: attributes,
    }))
}

/// Deletes a tag (the manifest stays) or a manifest by digest with its tags: 202, as ACR.
async fn delete(
    State(app): State<App>,
    who: Principal,
    Path(path): Path<String>,
) -> Result<StatusCode, V2Error> {
    let (r, reference) = match target(&path)? {
        Target::Tag(r, t) => (r, Reference::Tag(Tag::try_from(t.as_str())?)),
        Target::Manifest(r, d) => (r, Reference::Digest(parse_digest(&d)?)),
        _ => return Err(not_allowed()),
    };
    app.registry
        .delete_manifest(&who, &repo(&r)?, &reference)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

fn target(path: &str) -> Result<Target, V2Error> {
    Target::parse(path).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such registry metadata endpoint",
        )
        .into()
    })
}

fn not_allowed() -> V2Error {
    OciError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is not supported on this resource",
    )
    .into()
}

/// ACR's `orderby`: `timedesc` or `timeasc` (Kiln's own `time_desc`, `time_asc` too), else by
/// name; the value to repeat in the next page's link.
fn order(orderby: Option<&String>) -> Result<(TagOrder, Option<&'static str>), V2Error> {
    match orderby.map(String::as_str).unwrap_or("") {
        "" | "name" => Ok((TagOrder::Name, None)),
        "timedesc" | "time_desc" => Ok((TagOrder::TimeDesc, Some("timedesc"))),
        "timeasc" | "time_asc" => Ok((TagOrder::TimeAsc, Some("timeasc"))),
        other => Err(RegistryError::Unsupported(format!(
            "invalid orderby '{other}': expected timedesc or timeasc"
        ))
        .into()),
    }
}

fn page_size(query: &HashMap<String, String>) -> Result<u32, V2Error> {
    match query.get("n") {
        None => Ok(DEFAULT_PAGE),
        Some(n) => n
            .parse()
            .map_err(|_| RegistryError::Unsupported(format!("invalid page size n={n}")).into()),
    }
}

/// `Link: </acr/v1/<name>/_tags?last=<last>&n=<n>[&orderby=…]>; rel="next"`.
fn next_link(uri: &Uri, last: &str, n: u32, orderby: Option<&str>) -> HeaderValue {
    let orderby = orderby.map(|o| format!("&orderby={o}")).unwrap_or_default();
    header_value(format!(
        "<{}?last={last}&n={n}{orderby}>; rel=\"next\"",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_repeat_the_order_and_page_size() {
        let uri: Uri = "/acr/v1/app/web/_tags?orderby=timedesc&n=2"
            .parse()
            .unwrap();
        let link = next_link(&uri, "v1", 2, Some("timedesc"));
        assert_eq!(
            link,
            "</acr/v1/app/web/_tags?last=v1&n=2&orderby=timedesc>; rel=\"next\""
        );
        assert!(order(Some(&"newest".to_string())).is_err());
    }
}
