-- Access tokens and the key that signs short-lived registry tokens. Times are Unix
-- milliseconds (UTC).
CREATE TABLE tokens (
    id           TEXT    PRIMARY KEY,           -- random; what registry tokens name as their parent
    name         TEXT    NOT NULL UNIQUE,       -- the Basic-auth username
    roles        TEXT    NOT NULL,              -- JSON array: 'pull', 'push', 'delete', 'owner' or 'worker'
    repositories TEXT    NOT NULL,              -- JSON array of repository patterns ('app/*')
    secret_hash  TEXT    NOT NULL UNIQUE,       -- SHA-256 hex of the secret; the secret itself is never stored
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,                       -- NULL: never
    last_used_at INTEGER                        -- updated at most once a minute
);

-- One row: the HMAC key for registry tokens and run credentials, kept here so that every API
-- node on the same database verifies what any of them issued.
CREATE TABLE signing_keys (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key        BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
