#!/usr/bin/env bash
# Installs and starts what Kiln and its tests need on a fresh Debian 12 machine, idempotently:
# a Docker engine with BuildKit, a CNCF distribution registry on 127.0.0.1:5000 (delete enabled),
# skopeo, and a local busybox base image in that registry (nothing can be pulled from the internet).
set -euo pipefail

STATE=${KILN_SETUP_DIR:-/var/lib/kiln-setup}
REGISTRY=127.0.0.1:5000
mkdir -p "$STATE"

log() { printf '[setup] %s\n' "$*"; }

need_pkgs=()
# libssl-dev and pkg-config: git2 links OpenSSL for https git contexts.
for p in docker.io docker-registry skopeo busybox-static curl ca-certificates jq libssl-dev pkg-config; do
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

# A base image built from Debian's busybox-static: the tests' Dockerfiles start FROM it.
if ! skopeo inspect --tls-verify=false "docker://$REGISTRY/busybox:latest" >/dev/null 2>&1; then
  log "building $REGISTRY/busybox:latest from busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import --platform linux/amd64 \
    -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$REGISTRY/busybox:latest" >/dev/null
  docker push -q "$REGISTRY/busybox:latest" >/dev/null
  rm -rf "$root"
fi

log "ready: docker $(docker version -f '{{.Server.Version}}'), registry $REGISTRY, base image $REGISTRY/busybox:latest"
