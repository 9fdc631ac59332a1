#!/usr/bin/env bash
# The scan benchmark: Kiln's scan of an image (the worker's pure scan library, release build,
# reading an OCI layout: the example scan_oci_layout) against syft's catalog of the same
# layout (`syft scan oci-dir:`), wall time and peak RSS of each (/usr/bin/time -v), the median
# of $RUNS runs after one warm-up each. Target: Kiln ÷ syft ≤ 1.0.
#
# Then end to end, once: `kiln scan` of the same image pushed to a `kiln serve` (release
# binary, embedded worker, a temporary data directory, the real OSV exports of
# ../shared/osv imported): the wall time of the first scan (every layer read over HTTP,
# matched) and of a re-scan (the stored inventory matched again after an import), and the
# server's peak RSS during the scans (reset after the import, which is measured by
# scripts/bench_vulndb.sh).
#
# The image: scan-fixtures/layered's linux/amd64 image (Debian 12 minbase, the language
# packages, the whiteouts; scripts/build-scan-images.sh) plus one large layer, Debian's Go
# toolchain (/usr/lib/go-1.19: ~330 MB, ~12,000 files, a few dozen Go programs with build
# info), so that reading layers, not starting up, is what is measured.
#
#   bash scripts/bench_scan.sh            # RUNS=5 by default; KILN_BIN=path skips building kiln
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
STATE=${KILN_SETUP_DIR:-/var/lib/kiln-setup}
SRC="$STATE/scan-images/layered"
BENCH="$STATE/scan-images/bench"
GO_ROOT=/usr/lib/go-1.19
export SOURCE_DATE_EPOCH=1700000000

log() { printf '[bench-scan] %s\n' "$*" >&2; }

[ -f "$SRC/index.json" ] || bash scripts/build-scan-images.sh
command -v syft >/dev/null || { log "syft is missing: bash scripts/setup.sh installs it"; exit 1; }
[ -d "$GO_ROOT" ] || { log "$GO_ROOT is missing: apt-get install golang-go"; exit 1; }

# The bench layout: one image, the layered amd64 image's layers and the Go toolchain's.
if [ ! -f "$BENCH/index.json" ]; then
  log "building the bench image (layered amd64 + $GO_ROOT)"
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  mkdir -p "$TMP/layout/blobs/sha256"
  cp "$SRC/oci-layout" "$TMP/layout/"
  blob_file() { echo "$SRC/blobs/${1%%:*}/${1#*:}"; }
  manifest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "amd64") | .digest' "$SRC/index.json")
  jq . "$(blob_file "$manifest")" >"$TMP/manifest.json"
  for digest in $(jq -r '.layers[].digest' "$TMP/manifest.json"); do
    ln "$(blob_file "$digest")" "$TMP/layout/blobs/sha256/${digest#*:}" 2>/dev/null ||
      cp "$(blob_file "$digest")" "$TMP/layout/blobs/sha256/${digest#*:}"
  done
  tar -C / --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$SOURCE_DATE_EPOCH \
    -cf "$TMP/go.tar" "${GO_ROOT#/}"
  diff_id="sha256:$(sha256sum "$TMP/go.tar" | cut -d ' ' -f 1)"
  gzip -n -6 "$TMP/go.tar"
  layer_digest="sha256:$(sha256sum "$TMP/go.tar.gz" | cut -d ' ' -f 1)"
  layer_size=$(stat -c %s "$TMP/go.tar.gz")
  mv "$TMP/go.tar.gz" "$TMP/layout/blobs/sha256/${layer_digest#*:}"
  config=$(jq -r .config.digest "$TMP/manifest.json")
  jq --arg d "$diff_id" '.rootfs.diff_ids += [$d]' "$(blob_file "$config")" >"$TMP/config.json"
  config_digest="sha256:$(sha256sum "$TMP/config.json" | cut -d ' ' -f 1)"
  config_size=$(stat -c %s "$TMP/config.json")
  mv "$TMP/config.json" "$TMP/layout/blobs/sha256/${config_digest#*:}"
  jq --arg cd "$config_digest" --argjson cs "$config_size" \
    --arg ld "$layer_digest" --argjson ls "$layer_size" \
    '.config.digest = $cd | .config.size = $cs
     | .layers += [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]' \
    "$TMP/manifest.json" >"$TMP/bench-manifest.json"
  m_digest="sha256:$(sha256sum "$TMP/bench-manifest.json" | cut -d ' ' -f 1)"
  m_size=$(stat -c %s "$TMP/bench-manifest.json")
  mv "$TMP/bench-manifest.json" "$TMP/layout/blobs/sha256/${m_digest#*:}"
  jq -n --arg d "$m_digest" --argjson s "$m_size" '{schemaVersion: 2, manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
      annotations: {"org.opencontainers.image.ref.name": "bench"}}]}' >"$TMP/layout/index.json"
  rm -rf "$BENCH"
  mv "$TMP/layout" "$BENCH"
fi

log "building the release example scan_oci_layout"
cargo build -q --release -p kiln-worker --example scan_oci_layout
KILN=target/release/examples/scan_oci_layout

OUT=$(mktemp -d)
# Runs "$@" under /usr/bin/time -v; prints "<seconds> <peak KiB>".
measure() {
  /usr/bin/time -v -o "$OUT/time" "$@" >"$OUT/stdout" 2>"$OUT/stderr" ||
    { log "failed: $*"; cat "$OUT/stderr" >&2; exit 1; }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i] }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %d\n", s, rss }
  ' "$OUT/time"
}
# The median of "<seconds> <KiB>" lines by seconds, and the largest RSS.
summarise() {
  sort -n | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END { printf "%.3f %d\n", t[int((NR + 1) / 2)], m }'
}

kiln() { measure "$KILN" "$BENCH" bench; }
syft_scan() {
  SYFT_CHECK_FOR_APP_UPDATE=false measure syft scan "oci-dir:$BENCH" \
    --select-catalogers "+rust-cargo-lock-cataloger,+javascript-lock-cataloger" -o syft-json -q
}

kiln >/dev/null
log "Kiln: $(tail -n 1 "$OUT/stderr")"
kiln_packages=$(jq '.packages | length' "$OUT/stdout")
syft_scan >/dev/null
syft_packages=$(jq '.artifacts | length' "$OUT/stdout")

for _ in $(seq "$RUNS"); do kiln; done | summarise >"$OUT/kiln"
for _ in $(seq "$RUNS"); do syft_scan; done | summarise >"$OUT/syft"
read -r kiln_s kiln_kib <"$OUT/kiln"
read -r syft_s syft_kib <"$OUT/syft"

# End to end: prints "<first scan s> <re-scan s> <peak KiB> <packages>".
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# A subshell: the server it starts is stopped however it ends.
end_to_end() (
  local osv dir port pid token image t0 t1 t2 t3 kib
  for osv in "${KILN_OSV_DIR:-}" ../shared/osv ../../shared/osv; do
    [ -n "$osv" ] && [ -f "$osv/Go/all.zip" ] && break
  done
  [ -f "$osv/Go/all.zip" ] || { log "no OSV exports (set KILN_OSV_DIR)"; return 1; }
  dir="$OUT/serve"
  mkdir -p "$dir"
  port=$(free_port)
  export KILN_SERVER="http://127.0.0.1:$port" KILN_CREDENTIALS_FILE="$dir/credentials.json"
  KILN_DATA_DIR="$dir/data" "$KILN_BIN" serve --listen "127.0.0.1:$port" >"$dir/serve.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' EXIT
  until curl -fsS "$KILN_SERVER/healthz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/serve.log" >&2; return 1; }
    sleep 0.1
  done
  "$KILN_BIN" vulndb import "$osv"/*/all.zip >&2
  token=$(jq -r '.servers[env.KILN_SERVER].token' "$KILN_CREDENTIALS_FILE")
  image="127.0.0.1:$port/bench/image:v1"
  skopeo copy -q --dest-tls-verify=false --dest-creds "owner:$token" "oci:$BENCH:bench" "docker://$image" >&2
  # Peak RSS from here on: the scans', not the import's.
  echo 5 >"/proc/$pid/clear_refs"
  t0=$(now)
  "$KILN_BIN" scan "$image" --allow-missing-db >"$dir/first" 2>&1 || { cat "$dir/first" >&2; return 1; }
  t1=$(now)
  # A newer import of one source: the re-scan matches the stored inventory again.
  "$KILN_BIN" vulndb import "$osv/crates.io/all.zip" >&2
  t2=$(now)
  "$KILN_BIN" scan "$image" --allow-missing-db >"$dir/again" 2>&1 || { cat "$dir/again" >&2; return 1; }
  t3=$(now)
  grep -q 'no layer read' "$dir/again" || { log "the re-scan read the layers again"; return 1; }
  kib=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" || true
  awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v kib="$kib" \
    -v n="$(grep -m 1 -o 'Found [0-9]*' "$dir/first" | cut -d ' ' -f 2)" \
    'BEGIN { printf "%.3f %.3f %d %d\n", t1 - t0, t3 - t2, kib, n }'
)
# KILN_BIN: a kiln binary already built (else the release build of this tree).
if [ -z "${KILN_BIN:-}" ]; then
  log "building the release kiln binary"
  cargo build -q --release --bin kiln
  KILN_BIN=target/release/kiln
fi
read -r e2e_s e2e_again_s e2e_kib e2e_packages < <(end_to_end)

manifest="$BENCH/blobs/sha256/$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "$BENCH/index.json")"
awk -v layers="$(jq '.layers | length' "$manifest")" -v bytes="$(jq '[.layers[].size] | add' "$manifest")" \
  -v ks="$kiln_s" -v kk="$kiln_kib" -v kp="$kiln_packages" \
  -v ss="$syft_s" -v sk="$syft_kib" -v sp="$syft_packages" -v runs="$RUNS" 'BEGIN {
    printf "image: %d layers, %.0f MB compressed\n", layers, bytes / 1e6
    printf "%-6s %8s %10s %9s\n", "tool", "seconds", "peak MiB", "packages"
    printf "%-6s %8.3f %10.1f %9d\n", "kiln", ks, kk / 1024, kp
    printf "%-6s %8.3f %10.1f %9d\n", "syft", ss, sk / 1024, sp
    printf "kiln / syft: time %.2f, peak RSS %.2f (median of %d runs; target time <= 1.0)\n", ks / ss, kk / sk, runs
  }'
awk -v es="$e2e_s" -v ea="$e2e_again_s" -v ek="$e2e_kib" -v ep="$e2e_packages" -v ss="$syft_s" 'BEGIN {
    printf "end to end (kiln scan, kiln serve + embedded worker, real OSV data, once):\n"
    printf "  first scan %.3f s (÷ syft %.2f), re-scan after an import %.3f s, server peak RSS %.1f MiB, %d packages\n", es, es / ss, ea, ek / 1024, ep
  }'
rm -rf "$OUT"
