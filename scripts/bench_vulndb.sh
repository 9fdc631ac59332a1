#!/bin/sh
# Benchmarks of the vulnerability database: `kiln vulndb import` of all of ../shared/osv/
# (records/s) and matching a 1,000-package inventory against it (ms).
# Release build by default; BENCH_PROFILE=dev uses the test profile (its version parsers and
# SQLite are optimised, the rest is not).
set -eu
cd "$(dirname "$0")/.."
if [ "${BENCH_PROFILE:-release}" = dev ]; then
    exec cargo test --test vulndb_bench -- --ignored --nocapture
fi
exec cargo test --release --test vulndb_bench -- --ignored --nocapture
