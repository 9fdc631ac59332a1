-- Runs of the same repository and Dockerfile share a cache key, so the scheduler can send a
-- rebuild to the worker that holds its layer cache.
ALTER TABLE runs ADD COLUMN cache_key TEXT;
CREATE INDEX runs_by_cache_key ON runs (cache_key, seq);
