-- The vulnerability database (`kiln vulndb import`) and what scans stored of each image.

-- One row: the database version, bumped by every import, so a report knows whether it was
-- matched against the data there is now.
CREATE TABLE vuln_db (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO vuln_db (id, version) VALUES (1, 0);

-- An imported source (`Go`, `Debian:12`): an import replaces all of its records.
CREATE TABLE vuln_sources (
    name            TEXT    PRIMARY KEY,
    records         INTEGER NOT NULL,
    newest_modified TEXT,                   -- RFC 3339, the newest record's `modified`
    imported_at     INTEGER NOT NULL,       -- Unix ms
    db_version      INTEGER NOT NULL        -- vuln_db.version the import made
);

-- OSV records as JSON, by source.
CREATE TABLE vuln_records (
    id        INTEGER PRIMARY KEY,
    source    TEXT    NOT NULL REFERENCES vuln_sources (name),
    osv_id    TEXT    NOT NULL,
    modified  TEXT    NOT NULL,
    record    TEXT    NOT NULL
);
CREATE INDEX vuln_records_by_source ON vuln_records (source);

-- (ecosystem, normalised name) → record: a scan looks its packages up here. Withdrawn
-- records are not indexed, as they match nothing.
CREATE TABLE vuln_packages (
    ecosystem TEXT    NOT NULL,             -- as `Ecosystem` prints it: `Debian:12`, `PyPI`
    name      TEXT    NOT NULL,             -- `Ecosystem::normalise_name`
    record_id INTEGER NOT NULL REFERENCES vuln_records (id),
    source    TEXT    NOT NULL,
    PRIMARY KEY (ecosystem, name, record_id)
) WITHOUT ROWID;
CREATE INDEX vuln_packages_by_source ON vuln_packages (source);

-- What a worker read of one platform's image, by manifest digest and scanner version: a
-- rescan after a newer import matches this again without pulling the image.
CREATE TABLE scan_inventories (
    digest          TEXT    NOT NULL,
    scanner_version INTEGER NOT NULL,
    stored_at       INTEGER NOT NULL,
    inventory       TEXT    NOT NULL,       -- JSON `Inventory`
    PRIMARY KEY (digest, scanner_version)
);

-- The latest report per manifest digest; the totals are columns for registry listings.
CREATE TABLE scan_reports (
    digest          TEXT    PRIMARY KEY,
    scanned_at      INTEGER NOT NULL,
    db_version      INTEGER NOT NULL,
    scanner_version INTEGER NOT NULL,
    critical        INTEGER NOT NULL,
    high            INTEGER NOT NULL,
    medium          INTEGER NOT NULL,
    low             INTEGER NOT NULL,
    none            INTEGER NOT NULL,
    unknown         INTEGER NOT NULL,
    report          TEXT    NOT NULL        -- JSON `ScanReport`
);
