#!/usr/bin/env bash
# Builds the images the scan tests read, from Debian's packages (nothing can be pulled), saves
# them as OCI layouts under $STATE/scan-images/ and pushes them to the registry under
# scan-fixtures/. Idempotent: a stamp of this script's own content says what was built, so a
# second run only checks that the registry still has the tags (a few seconds).
#
# scan-fixtures/layered:latest, an OCI index of two platforms (also :amd64 and :arm64):
#   layer 1 (gzip)  linux/amd64: a Debian 12 root file system from bookworm main (mmdebstrap,
#                   minbase); linux/arm64: busybox from Debian's busybox-static:arm64 (only
#                   downloaded and unpacked: nothing runs under emulation).
#   layer 2 (gzip)  old versions with known advisories: Python dist-info folders (requests,
#                   urllib3, jinja2, pyyaml), an npm app (node_modules package.json files and a
#                   package-lock.json v3), a Go program with module build info (built here by
#                   Debian's Go 1.19 with a vendored golang.org/x/text v0.3.5), a Cargo.lock.
#   layer 3 (zstd)  deletes some of it: a `.wh.` file for jinja2's dist-info and for the Go
#                   program's second name, an opaque node_modules/ that keeps only a newer
#                   minimist.
# What each image holds is in tests/common/scan_images.rs, which the tests compare with.
set -euo pipefail

STATE=${KILN_SETUP_DIR:-/var/lib/kiln-setup}
REGISTRY=${KILN_SCAN_REGISTRY:-127.0.0.1:5000}
OUT="$STATE/scan-images"
STAMP="$OUT/layered.stamp"
SELF_SUM=$(sha256sum "$0" | cut -d ' ' -f 1)
# Fixed times keep the layers' bytes (and so their digests) the same from run to run.
export SOURCE_DATE_EPOCH=1700000000
MTIME=@$SOURCE_DATE_EPOCH

log() { printf '[scan-images] %s\n' "$*"; }

pushed() {
  for tag in latest amd64 arm64; do
    skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/scan-fixtures/layered:$tag" >/dev/null 2>&1 || return 1
  done
}

if [ "$(cat "$STAMP" 2>/dev/null)" = "$SELF_SUM" ] && [ -f "$OUT/layered/index.json" ] && pushed; then
  log "scan-fixtures/layered is up to date"
  exit 0
fi

need_pkgs=()
for p in mmdebstrap golang-go zstd skopeo jq; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LAYOUT="$TMP/layout"
mkdir -p "$LAYOUT/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"

# Moves file $1 into the layout's blobs; prints its descriptor with media type $2.
blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d ' ' -f 1)
  size=$(stat -c %s "$1")
  mv "$1" "$LAYOUT/blobs/sha256/$digest"
  jq -nc --arg m "$2" --arg d "sha256:$digest" --argjson s "$size" '{mediaType: $m, digest: $d, size: $s}'
}

# A tar of directory $1, owned by root, in a fixed order and with fixed times.
tar_dir() {
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$MTIME" -cf - .
}

# The sha256 of the uncompressed tar $1, for the config's diff_ids.
diff_id() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d ' ' -f 1)"; }

# Writes the image for architecture $1 from uncompressed tars $2.. (each compressed as the
# matching entry of $COMPRESS says); prints the manifest's descriptor with its platform.
image() {
  local arch=$1 i=0 layers=() diff_ids=() tarball
  shift
  for tarball in "$@"; do
    diff_ids+=("$(diff_id "$tarball")")
    case ${COMPRESS[$i]} in
      gzip)
        gzip -n -6 -c "$tarball" >"$tarball.gz"
        layers+=("$(blob "$tarball.gz" application/vnd.oci.image.layer.v1.tar+gzip)")
        ;;
      zstd)
        zstd -q -3 -c "$tarball" >"$tarball.zst"
        layers+=("$(blob "$tarball.zst" application/vnd.oci.image.layer.v1.tar+zstd)")
        ;;
    esac
    i=$((i + 1))
  done
  jq -n --arg arch "$arch" --args '{
      created: "2023-11-14T22:13:20Z", architecture: $arch, os: "linux",
      config: {Env: ["PATH=/usr/local/bin:/usr/bin:/bin"], Cmd: ["/bin/sh"]},
      rootfs: {type: "layers", diff_ids: $ARGS.positional}
    }' "${diff_ids[@]}" >"$TMP/config-$arch.json"
  local config
  config=$(blob "$TMP/config-$arch.json" application/vnd.oci.image.config.v1+json)
  printf '%s\n' "${layers[@]}" | jq -s --argjson config "$config" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: $config, layers: .
    }' >"$TMP/manifest-$arch.json"
  blob "$TMP/manifest-$arch.json" application/vnd.oci.image.manifest.v1+json |
    jq -c --arg arch "$arch" '. + {platform: {architecture: $arch, os: "linux"}}'
}

# Layer 1, linux/amd64: Debian 12 from the bookworm suite only (no security updates, so its
# versions carry advisories), from the mirror this machine's apt already uses.
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources" 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
log "building a Debian 12 minbase root file system (mmdebstrap)"
mmdebstrap --quiet --variant=minbase --mode=unshare --format=tar \
  --skip=output/dev \
  bookworm "$TMP/debian.tar" "deb $mirror bookworm main" >"$TMP/mmdebstrap.log" 2>&1 ||
  { log "mmdebstrap failed:"; tail -n 30 "$TMP/mmdebstrap.log"; exit 1; }

# Layer 1, linux/arm64: busybox-static's arm64 binary and its applet links, as setup.sh makes.
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
download() { (cd "$TMP" && apt-get download -qq -o APT::Sandbox::User=root busybox-static:arm64); }
download 2>/dev/null || { apt-get update -qq && download; }
dpkg-deb -x "$TMP"/busybox-static_*_arm64.deb "$TMP/busybox-deb"
mkdir -p "$TMP/busybox/bin" "$TMP/busybox/etc"
cp "$TMP/busybox-deb/bin/busybox" "$TMP/busybox/bin/busybox"
for applet in sh ls cat; do ln -s busybox "$TMP/busybox/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$TMP/busybox/etc/passwd"
tar_dir "$TMP/busybox" >"$TMP/busybox.tar"

# Layer 2: the language packages, the same on both platforms but for the Go program's arch.
app_layer() {
  local root="$TMP/app-$1" site
  site="$root/usr/local/lib/python3.11/dist-packages"
  for pkg in requests:2.19.1 urllib3:1.24.1 Jinja2:2.10 PyYAML:5.3; do
    local name=${pkg%%:*} version=${pkg#*:}
    mkdir -p "$site/$name-$version.dist-info"
    printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: a fixture of Kiln'"'"'s scan tests\n' \
      "$name" "$version" >"$site/$name-$version.dist-info/METADATA"
    printf '%s-%s.dist-info/METADATA,,\n' "$name" "$version" >"$site/$name-$version.dist-info/RECORD"
  done
  local web="$root/srv/web"
  mkdir -p "$web"
  echo '{"name":"web","version":"1.0.0","dependencies":{"lodash":"4.17.15","minimist":"1.2.0"}}' >"$web/package.json"
  jq -n '{name: "web", version: "1.0.0", lockfileVersion: 3, requires: true, packages: {
      "": {name: "web", version: "1.0.0", dependencies: {lodash: "4.17.15", minimist: "1.2.0"}},
      "node_modules/lodash": {version: "4.17.15"},
      "node_modules/minimist": {version: "1.2.0"}
    }}' >"$web/package-lock.json"
  for pkg in lodash:4.17.15 minimist:1.2.0; do
    mkdir -p "$web/node_modules/${pkg%%:*}"
    jq -n --arg n "${pkg%%:*}" --arg v "${pkg#*:}" '{name: $n, version: $v, license: "MIT"}' \
      >"$web/node_modules/${pkg%%:*}/package.json"
  done
  mkdir -p "$root/src/tool" "$root/usr/local/bin"
  cat >"$root/src/tool/Cargo.lock" <<'LOCK'
# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "regex"
version = "1.5.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "d07a8629359eb56f1e2fb1652bb04212c072a87ba68546a04065d525673ac461"

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "1a55ca5f3b68e41c979bf8c46a6f1da892ca4db8f94023ce0bd32407573b1ac0"

[[package]]
name = "tool"
version = "0.1.0"
dependencies = [
 "regex",
 "smallvec",
]
LOCK
  cp "$TMP/go/hello-$1" "$root/usr/local/bin/hello"
  # A second name for the same program, which layer 3 deletes.
  cp "$TMP/go/hello-$1" "$root/usr/local/bin/hello-old"
  tar_dir "$root" >"$TMP/app-$1.tar"
}

# The Go program: std and one vendored module, so the build info names a dependency without
# fetching anything.
mkdir -p "$TMP/go/src/vendor/golang.org/x/text/fixture"
cat >"$TMP/go/src/go.mod" <<'MOD'
module example.com/kiln/scanfixture

go 1.19

require golang.org/x/text v0.3.5
MOD
printf '# golang.org/x/text v0.3.5\n## explicit\ngolang.org/x/text/fixture\n' >"$TMP/go/src/vendor/modules.txt"
printf 'package fixture\n\n// Name stands in for golang.org/x/text in the scan fixtures.\nfunc Name() string { return "text" }\n' \
  >"$TMP/go/src/vendor/golang.org/x/text/fixture/fixture.go"
printf 'package main\n\nimport (\n\t"fmt"\n\n\t"golang.org/x/text/fixture"\n)\n\nfunc main() { fmt.Println("hello", fixture.Name()) }\n' \
  >"$TMP/go/src/main.go"
for arch in amd64 arm64; do
  (cd "$TMP/go/src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOFLAGS=-mod=vendor GOPROXY=off \
    GOCACHE="$TMP/go/cache" HOME="$TMP/go" go build -trimpath -ldflags=-s -o "$TMP/go/hello-$arch" .)
done
log "built the Go program with $(go version | cut -d ' ' -f 3)"

# Layer 3: deletions. A `.wh.` file per deleted path, an opaque node_modules/ with one package.
deletions_layer() {
  local root="$TMP/deletions"
  mkdir -p "$root/usr/local/lib/python3.11/dist-packages" "$root/usr/local/bin" \
    "$root/srv/web/node_modules/minimist"
  : >"$root/usr/local/lib/python3.11/dist-packages/.wh.Jinja2-2.10.dist-info"
  : >"$root/usr/local/bin/.wh.hello-old"
  : >"$root/srv/web/node_modules/.wh..wh..opq"
  jq -n '{name: "minimist", version: "1.2.6", license: "MIT"}' >"$root/srv/web/node_modules/minimist/package.json"
  tar_dir "$root" >"$TMP/deletions.tar"
}

app_layer amd64
app_layer arm64
deletions_layer
COMPRESS=(gzip gzip zstd)
amd64=$(image amd64 "$TMP/debian.tar" "$TMP/app-amd64.tar" "$TMP/deletions.tar")
arm64=$(image arm64 "$TMP/busybox.tar" "$TMP/app-arm64.tar" "$TMP/deletions.tar")
jq -n --argjson a "$amd64" --argjson b "$arm64" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$a, $b]
  }' >"$TMP/index.json"
index=$(blob "$TMP/index.json" application/vnd.oci.image.index.v1+json)
ref() { jq -c --arg r "$2" '{mediaType, digest, size} + {annotations: {"org.opencontainers.image.ref.name": $r}}' <<<"$1"; }
jq -n --argjson i "$(ref "$index" latest)" --argjson a "$(ref "$amd64" amd64)" --argjson b "$(ref "$arm64" arm64)" \
  '{schemaVersion: 2, manifests: [$i, $a, $b]}' >"$LAYOUT/index.json"

for tag in latest amd64 arm64; do
  all=(); [ "$tag" = latest ] && all=(--all)
  skopeo copy -q "${all[@]}" --dest-tls-verify=false --preserve-digests \
    "oci:$LAYOUT:$tag" "docker://$REGISTRY/scan-fixtures/layered:$tag"
done
mkdir -p "$OUT"
rm -rf "$OUT/layered"
mv "$LAYOUT" "$OUT/layered"
echo "$SELF_SUM" >"$STAMP"
log "pushed $REGISTRY/scan-fixtures/layered:latest ($(jq -r .digest <<<"$index")), saved $OUT/layered"
