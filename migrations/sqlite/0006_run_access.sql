-- Who queued a run, and what its build may do in Kiln's own registry: push to the
-- repositories it names, pull what its submitter may pull (for FROM). Fixed at submission.
ALTER TABLE runs ADD COLUMN submitted_by TEXT;
ALTER TABLE runs ADD COLUMN registry_grants TEXT NOT NULL DEFAULT '[]';
