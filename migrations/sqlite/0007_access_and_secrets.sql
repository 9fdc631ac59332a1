-- Who queued a run, by token id: a name can be revoked and given to a new token, an id never
-- comes back. Backfilled only where the id is certain: the live token of that name was
-- created before the run (names are unique among live tokens, so it is the one that queued
-- it). Runs left NULL are visible to owners and repository readers only.
ALTER TABLE runs ADD COLUMN submitted_token_id TEXT;
UPDATE runs SET submitted_token_id = (
    SELECT t.id FROM tokens t
    WHERE runs.submitted_by = 'token ''' || t.name || '''' AND t.created_at < runs.created_at
);

-- The uploaded context a run builds, so a context is readable by whoever can see such a run.
ALTER TABLE runs ADD COLUMN context_digest TEXT;
UPDATE runs SET context_digest = json_extract(spec, '$.context.digest')
WHERE json_extract(spec, '$.context.kind') = 'upload';
CREATE INDEX runs_by_context ON runs (context_digest) WHERE context_digest IS NOT NULL;

-- Which tokens uploaded a context: they may check for it and build it again before any run
-- uses it. Contexts uploaded before this migration have no uploader row.
CREATE TABLE context_uploads (
    digest      TEXT    NOT NULL,
    token_id    TEXT    NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (digest, token_id)
);

-- A run's secrets (git access token, credentials in its context URL, build-arg values),
-- sealed with the server's secret key (AEAD) and cleared when the run ends. The plain
-- `git_token` column is emptied at start-up and no longer written.
ALTER TABLE runs ADD COLUMN secrets TEXT;

-- A known value sealed with the secret key, so a start with another key fails at once instead
-- of failing to open secrets later.
CREATE TABLE secret_key_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed TEXT    NOT NULL
);
