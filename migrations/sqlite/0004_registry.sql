-- Kiln's own OCI registry. Blob and manifest bytes live on disk under
-- <data>/registry/blobs/sha256/<first two hex>/<hex>, shared by every repository; these tables
-- say which repository may see which content. Times are Unix milliseconds (UTC).

CREATE TABLE blobs (
    digest     TEXT    PRIMARY KEY,         -- 'sha256:<hex>'; manifests are stored as blobs too
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    touched_at INTEGER NOT NULL             -- last upload, mount or existence check that relied on it; GC grace counts from here
);

CREATE TABLE repositories (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A blob is visible in a repository once uploaded to or mounted into it.
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL REFERENCES blobs (digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL REFERENCES blobs (digest),
    media_type    TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    artifact_type TEXT,                     -- for the referrers API: artifactType, else config.mediaType
    subject       TEXT,                     -- digest of the manifest this one refers to
    annotations   TEXT,                     -- JSON object or NULL
    platforms     TEXT    NOT NULL DEFAULT '[]', -- JSON array of 'os/arch[/variant]'
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    run_id        TEXT,                     -- the build run that pushed it, if any
    PRIMARY KEY (repository_id, digest)
);

CREATE INDEX manifests_by_subject ON manifests (repository_id, subject);

-- What a manifest needs: its config and layers (blobs) or, for an index, its manifests.
-- GC marks from here.
CREATE TABLE manifest_references (
    repository_id   INTEGER NOT NULL,
    manifest_digest TEXT    NOT NULL,
    child_digest    TEXT    NOT NULL,
    child_kind      TEXT    NOT NULL CHECK (child_kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository_id, manifest_digest, child_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);

CREATE INDEX manifest_references_by_child ON manifest_references (child_digest);

CREATE TABLE tags (
    repository_id   INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    run_id          TEXT,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);

CREATE INDEX tags_by_manifest ON tags (repository_id, manifest_digest);

-- Blob upload sessions; the bytes so far are in <data>/registry/uploads/<id>.
CREATE TABLE uploads (
    id         TEXT    PRIMARY KEY,
    repository TEXT    NOT NULL,
    size       INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
