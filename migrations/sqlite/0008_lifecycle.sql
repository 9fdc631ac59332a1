-- Run lifecycle. `queue_timeout_secs`: how long a run may wait for a worker before it ends as
-- Expired (0: no limit; NULL: queued before this column, the server's default applies).
-- `server_instance`: the server process whose embedded worker holds the run, so the next
-- start settles it at once instead of after the lease time.
ALTER TABLE runs ADD COLUMN queue_timeout_secs INTEGER;
ALTER TABLE runs ADD COLUMN server_instance TEXT;
-- Retention deletes runs that ended long ago.
CREATE INDEX runs_by_finished_at ON runs (finished_at) WHERE finished_at IS NOT NULL;
