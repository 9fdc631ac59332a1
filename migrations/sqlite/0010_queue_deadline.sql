-- When a queued run expires, stored at submission (created_at + its queue timeout; NULL when it
-- has no limit), so the reaper reads only the expired runs through this partial index instead
-- of every queued run each second. A requeued run keeps its deadline: the queue timeout counts
-- from submission, as before. Runs queued before runs had their own queue timeout get theirs
-- from the server's default when the server starts.
ALTER TABLE runs ADD COLUMN queue_deadline INTEGER;
UPDATE runs SET queue_deadline = created_at + queue_timeout_secs * 1000
    WHERE status = 'Queued' AND queue_timeout_secs > 0;
CREATE INDEX runs_queued_by_deadline ON runs (queue_deadline)
    WHERE status = 'Queued' AND queue_deadline IS NOT NULL;
