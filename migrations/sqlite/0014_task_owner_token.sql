-- The token that created a task: runs its triggers start (webhooks, timers, base-image
-- updates) act with what that token may do, and stop when it is revoked, so a trigger never
-- grants more than its creator had. NULL for tasks created before triggers existed, and for
-- tasks created by a run's credentials: their triggered runs are refused with a reason.
ALTER TABLE tasks ADD COLUMN created_token_id TEXT;
