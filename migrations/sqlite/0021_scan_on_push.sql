-- Scan-on-push per repository: 1 scans every manifest pushed by tag, 0 never, NULL follows
-- the server's `--scan-on-push`.
ALTER TABLE repositories ADD COLUMN scan_on_push INTEGER;
