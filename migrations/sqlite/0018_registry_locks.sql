-- Locks, ACR's changeableAttributes: `write_enabled` and `delete_enabled` on repositories,
-- tags and manifests (1: allowed, the default; 0: locked). The registry services refuse a
-- push that would move a write-disabled tag or write into a write-disabled repository, and
-- a delete of anything write- or delete-disabled, as ACR does.
ALTER TABLE repositories ADD COLUMN write_enabled  INTEGER NOT NULL DEFAULT 1;
ALTER TABLE repositories ADD COLUMN delete_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tags         ADD COLUMN write_enabled  INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tags         ADD COLUMN delete_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE manifests    ADD COLUMN write_enabled  INTEGER NOT NULL DEFAULT 1;
ALTER TABLE manifests    ADD COLUMN delete_enabled INTEGER NOT NULL DEFAULT 1;

-- `GET /acr/v1/<name>/_tags?orderby=timedesc` pages through a repository's tags newest
-- first (what `acr purge` asks for); without this, each page would sort every tag.
CREATE INDEX tags_by_update ON tags (repository_id, updated_at, name);
