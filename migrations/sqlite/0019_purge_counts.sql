-- What a purge step deleted, as its worker reports it: JSON {"deletedTags", "deletedManifests"};
-- NULL for every other step type. A purge run (`kiln purge`, runs.kind 'purge') has one
-- step, `purge`.
ALTER TABLE run_steps ADD COLUMN purged TEXT;
