#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against a fresh `kiln serve`.
#
# Usage: scripts/conformance.sh PATH/TO/conformance [PATH/TO/kiln]
#
# The first argument is a conformance binary built from the distribution-spec repository's
# `conformance/` folder (`go build -o conformance .` there, Go 1.24 or later); this script
# neither fetches nor builds it. The kiln binary defaults to target/release/kiln.
#
# The server gets its own temporary data folder and credentials file, listens on a port it
# picks itself, and the suite signs in with the server's owner token. The suite's defaults
# apply (spec version 1.1: every API and data set, sha512 content and cross-repository mounts
# included); other OCI_* variables in the environment pass through (OCI_VERSION=dev adds
# upload cancel, required digest headers and tags as parameters). The
# results (results.yaml, junit.xml, report.html) go to $OCI_RESULTS_DIR, default
# ./conformance-results. Exit status: the suite's (0 when nothing failed).
set -euo pipefail

suite=${1:?usage: scripts/conformance.sh PATH/TO/conformance [PATH/TO/kiln]}
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${2:-$root/target/release/kiln}
[[ -x $suite ]] || { echo "no conformance binary at $suite" >&2; exit 2; }
[[ -x $kiln ]] || { echo "no kiln binary at $kiln: cargo build --release first" >&2; exit 2; }
suite=$(realpath "$suite")
results=$(realpath -m "${OCI_RESULTS_DIR:-conformance-results}")

work=$(mktemp -d)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$kiln" serve --listen 127.0.0.1:0 --workers 0 --data-dir "$work/data" \
    --credentials-file "$work/credentials.json" >"$work/serve.log" 2>&1 &
server=$!
addr=
for _ in $(seq 1 300); do
    addr=$(grep -oE 'addr=127\.0\.0\.1:[0-9]+' "$work/serve.log" | head -n1 | cut -d= -f2 || true)
    [[ -n $addr ]] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $addr ]]; then
    echo "kiln serve did not start:" >&2
    cat "$work/serve.log" >&2
    exit 2
fi
token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["servers"][sys.argv[2]]["token"])' \
    "$work/credentials.json" "http://$addr")

mkdir -p "$results"
cd "$work"
set +e
env OCI_REGISTRY="$addr" OCI_TLS=disabled \
    OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2 \
    OCI_USERNAME=owner OCI_PASSWORD="$token" \
    OCI_RESULTS_DIR="$results" \
    "$suite" >"$results/output.txt" 2>&1
status=$?
set -e
sed -n '/^OCI Conformance Result/,/^$/p' "$results/output.txt"
# The same counts as one line: skipped includes the checks the configuration disabled.
awk '/^ *Disabled\./ {s += $2} /^ *Skip\./ {s += $2} /^ *Pass\./ {p = $2} /^ *FAIL\./ {f += $2}
     /^ *Error\./ {f += $2} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}' \
    "$results/output.txt"
echo "details: $results/output.txt, $results/report.html"
exit $status
