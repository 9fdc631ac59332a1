-- Source triggers (git webhooks). A task's webhook is found by the random hook ID in its
-- spec (`sourceTriggers.hookId`), never by its name, so a URL does not reveal the task.
CREATE UNIQUE INDEX tasks_by_hook ON tasks (json_extract(spec, '$.sourceTriggers.hookId'));

-- Every webhook delivery a task received, recorded before it is acted on. An authentic
-- delivery's (task, provider, delivery ID) is unique: the insert that fails on a repeat is
-- what makes a redelivery start nothing. Deliveries refused for their signature are kept
-- for the log but do not count, so a forged copy cannot block the real one. Times are Unix
-- milliseconds; `verdict` is 'pending' until the delivery was acted on.
CREATE TABLE hook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    provider    TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    authentic   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    run_seq     INTEGER REFERENCES runs (seq) ON DELETE SET NULL
);
CREATE UNIQUE INDEX hook_deliveries_once ON hook_deliveries (task_id, provider, delivery_id)
    WHERE authentic = 1;
CREATE INDEX hook_deliveries_by_task ON hook_deliveries (task_id, id DESC);

-- Coalescing looks for a task's queued Commit runs.
CREATE INDEX runs_queued_by_task ON runs (task_id, seq DESC) WHERE status = 'Queued';
