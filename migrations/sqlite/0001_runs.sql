-- Runs and their status history. Times are Unix milliseconds (UTC).
CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT, -- the run ID is 'ca' || base36(seq)
    status           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    platform         TEXT    NOT NULL,
    requested_images TEXT    NOT NULL,                  -- JSON array, as the user wrote them
    spec             TEXT    NOT NULL,                  -- JSON BuildSpec with rendered images
    timeout_secs     INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    attempt          INTEGER NOT NULL DEFAULT 0,        -- fences worker calls: a stale attempt cannot write
    worker_id        TEXT,
    worker_name      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    output_images    TEXT    NOT NULL DEFAULT '[]',
    error_message    TEXT
);

CREATE INDEX runs_by_status ON runs (status, seq);

CREATE TABLE run_events (
    run_seq INTEGER NOT NULL REFERENCES runs (seq),
    status  TEXT    NOT NULL,
    at      INTEGER NOT NULL
);

CREATE INDEX run_events_by_run ON run_events (run_seq, at);
