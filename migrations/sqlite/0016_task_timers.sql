-- Timers: named cron schedules (ACR's 5-field UTC syntax) that start runs of a task. Times
-- are Unix milliseconds. A timer fires when a scheduler moves `next_fire_at` from the due
-- occurrence to the following one with a conditional UPDATE: of several servers on one
-- database exactly one succeeds, so an occurrence is fired once.
CREATE TABLE task_timers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL COLLATE NOCASE,   -- 't1', 'weekly'; unique per task
    schedule      TEXT    NOT NULL,                  -- as given: '0 2 * * Mon-Fri'
    enabled       INTEGER NOT NULL,                  -- a disabled timer's occurrences pass without a run
    next_fire_at  INTEGER,                           -- the next occurrence; NULL when none is left
    last_fired_at INTEGER,                           -- the last occurrence that was fired
    last_run_id   INTEGER,                           -- seq of the run it queued (NULL if refused)
    UNIQUE (task_id, name)
);
CREATE INDEX task_timers_due ON task_timers (next_fire_at) WHERE next_fire_at IS NOT NULL;
