-- A run is a job of one kind, made of steps.
-- `kind`: 'build' (today's quick build; every earlier run) or 'steps' (a task file or --cmd).
-- `requires`: what a worker must run to take it: 'build', or 'steps:' and the sorted step
-- types ('steps:build,cmd,push'). The claim seeks (platform, requires) pairs through
-- runs_queued_by_requirement, so a worker never reads queued runs it cannot run.
-- `trigger_detail`: JSON about what triggered the run (a commit, a timer...); NULL for Manual.
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'build';
ALTER TABLE runs ADD COLUMN requires TEXT NOT NULL DEFAULT 'build';
ALTER TABLE runs ADD COLUMN trigger_detail TEXT;
CREATE INDEX runs_queued_by_requirement ON runs (platform, requires, seq) WHERE status = 'Queued';

-- The steps of a run, as its worker reports them. A build run records its one step `build`
-- when it ends. Times are Unix milliseconds; images and base images are JSON arrays.
CREATE TABLE run_steps (
    run_seq     INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    step_id     TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    step_type   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    exit_code   INTEGER,
    images      TEXT    NOT NULL DEFAULT '[]',
    base_images TEXT    NOT NULL DEFAULT '[]',
    error       TEXT,
    PRIMARY KEY (run_seq, step_id)
) WITHOUT ROWID;
