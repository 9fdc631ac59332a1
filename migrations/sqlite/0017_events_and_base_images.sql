-- One stream of events (an outbox): registry pushes and deletes and runs reaching a final
-- state, each written in the same transaction as the change. Consumers (base-image triggers,
-- outbound webhooks) read after their own cursor, so nothing is lost across restarts.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- the order consumers read in; never reused
    action     TEXT    NOT NULL,                  -- 'push', 'delete', 'run-succeeded', 'run-failed', ...
    data       TEXT    NOT NULL,                  -- JSON of the event (repository, tag, digest, run...)
    created_at INTEGER NOT NULL                   -- Unix milliseconds
);

-- How far each consumer has handled the stream: advanced after handling, so an event a
-- consumer was handling when the process died is handled again on the next start.
CREATE TABLE event_cursors (
    consumer      TEXT    PRIMARY KEY,
    last_event_id INTEGER NOT NULL
);

-- The base images of a task's last successful run (FROM of each stage, with the digest it
-- resolved to), replaced by each success; the base-image trigger watches them.
CREATE TABLE task_base_images (
    task_id         INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    reference       TEXT    NOT NULL,  -- as written after FROM, build args expanded
    registry        TEXT    NOT NULL,  -- normalised: 'docker.io' for Docker Hub names
    repository      TEXT    NOT NULL,  -- 'library/busybox' for Docker Hub official images
    tag             TEXT,              -- NULL for a reference pinned by digest: it never moves
    digest          TEXT,              -- NULL when the worker could not resolve it
    runtime         INTEGER NOT NULL,  -- 1 for the last stage's base (the Runtime trigger type)
    last_checked_at INTEGER,           -- Unix milliseconds of the last poll (other registries)
    PRIMARY KEY (task_id, reference)
);
CREATE INDEX task_base_images_by_image ON task_base_images (registry, repository, tag);

-- Outbound webhooks: events sent to URLs, signed with a per-webhook secret (sealed).
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    uri        TEXT    NOT NULL,
    actions    TEXT    NOT NULL,  -- JSON array: 'push', 'delete', 'run-succeeded', 'run-failed'...
    scope      TEXT,              -- a repository pattern ('app/*'); NULL: every repository
    secret     TEXT    NOT NULL,  -- sealed HMAC key
    created_at INTEGER NOT NULL
);

-- Each event (or ping) to send to each webhook, with its attempts: the delivery log, and the
-- retry queue (pending deliveries, by when they are next due).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    action          TEXT    NOT NULL,
    body            TEXT    NOT NULL,  -- the JSON sent, signed as is
    status          TEXT    NOT NULL,  -- 'Pending', 'Delivered' or 'Failed'
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    response_code   INTEGER,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'Pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
