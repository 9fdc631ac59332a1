//! Registry URLs. Repository names contain slashes, so axum matches `/v2/{*path}` and this
//! pure function reads the path from its end, where the grammar is unambiguous.

/// A `/v2/` endpoint, with names and references still unvalidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`
    Uploads { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: String, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: String },
}

/// Parses the part of the path after `/v2/`. `None`: no such endpoint.
pub fn parse(path: &str) -> Option<V2Route> {
    if path.is_empty() {
        return Some(V2Route::Base);
    }
    if path == "_catalog" {
        return Some(V2Route::Catalog);
    }
    let name = |n: &str| (!n.is_empty()).then(|| n.to_string());
    if let Some(n) = path.strip_suffix("/tags/list") {
        return Some(V2Route::Tags { name: name(n)? });
    }
    if let Some(n) = path
        .strip_suffix("/blobs/uploads/")
        .or_else(|| path.strip_suffix("/blobs/uploads"))
    {
        return Some(V2Route::Uploads { name: name(n)? });
    }
    let (prefix, last) = path.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    let last = last.to_string();
    if let Some(n) = prefix.strip_suffix("/blobs/uploads") {
        return Some(V2Route::Upload {
            name: name(n)?,
            id: last,
        });
    }
    if let Some(n) = prefix.strip_suffix("/manifests") {
        return Some(V2Route::Manifest {
            name: name(n)?,
            reference: last,
        });
    }
    if let Some(n) = prefix.strip_suffix("/blobs") {
        return Some(V2Route::Blob {
            name: name(n)?,
            digest: last,
        });
    }
    if let Some(n) = prefix.strip_suffix("/referrers") {
        return Some(V2Route::Referrers {
            name: name(n)?,
            digest: last,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn paths_parse_from_their_end() {
        assert_eq!(parse(""), Some(V2Route::Base));
        assert_eq!(parse("_catalog"), Some(V2Route::Catalog));
        assert_eq!(
            parse("a/b/tags/list"),
            Some(V2Route::Tags { name: s("a/b") })
        );
        assert_eq!(
            parse("org/app/manifests/v1"),
            Some(V2Route::Manifest {
                name: s("org/app"),
                reference: s("v1")
            })
        );
        assert_eq!(
            parse("app/blobs/sha256:ab"),
            Some(V2Route::Blob {
                name: s("app"),
                digest: s("sha256:ab")
            })
        );
        assert_eq!(
            parse("a/blobs/uploads/"),
            Some(V2Route::Uploads { name: s("a") })
        );
        assert_eq!(
            parse("a/blobs/uploads"),
            Some(V2Route::Uploads { name: s("a") })
        );
        assert_eq!(
            parse("a/blobs/uploads/123"),
            Some(V2Route::Upload {
                name: s("a"),
                id: s("123")
            })
        );
        assert_eq!(
            parse("a/referrers/sha256:cd"),
            Some(V2Route::Referrers {
                name: s("a"),
                digest: s("sha256:cd")
            })
        );
        // A repository may itself be called "blobs" or "manifests".
        assert_eq!(
            parse("blobs/manifests/manifests/x"),
            Some(V2Route::Manifest {
                name: s("blobs/manifests"),
                reference: s("x")
            })
        );
    }

    #[test]
    fn other_paths_are_not_endpoints() {
        for bad in [
            "app",
            "app/",
            "app/manifests/",
            "/manifests/x",
            "tags/list",
            "a/other/x",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
