-- The queue at depth. These partial indexes hold only queued runs, so a worker's claim and a
-- run's queue position read those of the platform sets in question, oldest first, however many
-- runs wait for other platforms; cache affinity finds a cache key's last successful run
-- without walking the queued runs that share the key.
CREATE INDEX runs_queued_by_platform ON runs (platform, seq) WHERE status = 'Queued';
CREATE INDEX runs_succeeded_by_cache_key ON runs (cache_key, seq) WHERE status = 'Succeeded';
