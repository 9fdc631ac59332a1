-- Saved tasks: a build (Dockerfile), a multi-step task file or a `cmd`, with its context,
-- images and values, run on demand (and by triggers later). Times are Unix milliseconds.
CREATE TABLE tasks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,      -- never reused, so old runs never point at a new task
    name       TEXT    NOT NULL UNIQUE COLLATE NOCASE, -- as ACR: 'Web' and 'web' are one task
    status     TEXT    NOT NULL,                       -- 'Enabled' or 'Disabled'
    spec       TEXT    NOT NULL,                       -- JSON TaskSpec: secret values emptied, URL credentials masked
    secrets    TEXT,                                   -- sealed JSON of the secret values, git token and context URL
    created_at INTEGER NOT NULL,
    created_by TEXT,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);

-- The task a run belongs to; a deleted task leaves its runs, unlinked.
ALTER TABLE runs ADD COLUMN task_id INTEGER REFERENCES tasks (id) ON DELETE SET NULL;
CREATE INDEX runs_by_task ON runs (task_id, seq DESC) WHERE task_id IS NOT NULL;
