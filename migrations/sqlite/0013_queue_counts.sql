-- How many runs wait for each platform set, kept by triggers in the transaction of every change
-- to a run's status or platform, so a new run's queue position and the scheduler's list of
-- queued platform sets are one small read, not a count over every queued run (SQLite has no
-- O(1) COUNT). Rows stay at 0 once a set's queue empties; readers skip those.
CREATE TABLE queue_counts (
    platform TEXT PRIMARY KEY,
    queued   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO queue_counts (platform, queued)
    SELECT platform, COUNT(*) FROM runs WHERE status = 'Queued' GROUP BY platform;

CREATE TRIGGER runs_queue_counts_insert AFTER INSERT ON runs WHEN NEW.status = 'Queued'
BEGIN
    INSERT INTO queue_counts (platform, queued) VALUES (NEW.platform, 1)
        ON CONFLICT (platform) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER runs_queue_counts_update AFTER UPDATE OF status, platform ON runs
    WHEN OLD.status = 'Queued' OR NEW.status = 'Queued'
BEGIN
    UPDATE queue_counts SET queued = queued - 1
        WHERE OLD.status = 'Queued' AND platform = OLD.platform;
    INSERT INTO queue_counts (platform, queued) SELECT NEW.platform, 1 WHERE NEW.status = 'Queued'
        ON CONFLICT (platform) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER runs_queue_counts_delete AFTER DELETE ON runs WHEN OLD.status = 'Queued'
BEGIN
    UPDATE queue_counts SET queued = queued - 1 WHERE platform = OLD.platform;
END;
