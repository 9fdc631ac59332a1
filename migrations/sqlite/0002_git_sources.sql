-- Git contexts: what a run's ref resolved to, and the write-only access token.
ALTER TABLE runs ADD COLUMN git_commit TEXT;
ALTER TABLE runs ADD COLUMN git_branch TEXT;
ALTER TABLE runs ADD COLUMN git_token TEXT;
