#!/usr/bin/env python3
"""Kiln's registry against the CNCF distribution registry. Prints figures; passes or fails nothing.

Both servers run on this machine, in this run, each with fresh storage:
- `kiln serve --workers 0` (release build), authenticated with its owner token (Basic auth);
- `docker-registry serve` (Debian's distribution 2.8), no auth, filesystem storage.

1. push and pull of a 1 GiB image (4 layers of 256 MiB random data) through skopeo, throughput ratio;
2. 32 concurrent clients pushing small images (HEAD, POST, PUT for config and layer, then the
   manifest: 7 requests an image), requests/s ratio;
3. peak RSS of each server.

Each figure is the median of --repeat rounds, and the registries take turns going first (round
1 Kiln first, round 2 distribution first, ...), so neither always meets a warm or a cold page
cache or a busier machine. The output starts with what each side does that the other does not.

Usage: scripts/bench_registry.py [--repeat 5] [--image-mib 1024] [--seconds 10] [--clients 32]
"""

import argparse
import base64
import glob
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Server, timed, vm_hwm, ROOT  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Distribution:
    """`docker-registry serve` on a free loopback port with its own storage."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-bench-dist-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.host = f"127.0.0.1:{port}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: {self.host}\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.host)

    def auth(self):
        return None

    def peak_rss_mib(self):
        return vm_hwm(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


class Kiln:
    """`kiln serve` as a registry only, and its owner token for Basic auth."""

    def __init__(self):
        self.server = Server(workers=0)
        self.host = self.server.url.removeprefix("http://")
        self.name, self.secret = "owner", self.server.token

    def auth(self):
        return "Basic " + base64.b64encode(f"{self.name}:{self.secret}".encode()).decode()

    def peak_rss_mib(self):
        return self.server.peak_rss_mib()

    def stop(self):
        self.server.stop()


def wait_for(host):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection(host, timeout=2)
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no registry answered on {host}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), os.path.getsize(path)


def big_image(total_mib, layers=4):
    """An OCI layout holding one image of `layers` uncompressed tar layers of random data."""
    root = tempfile.mkdtemp(prefix="kiln-bench-oci-")
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs)

    def put(path):
        digest, size = sha256_file(path)
        os.replace(path, os.path.join(blobs, digest.split(":")[1]))
        return digest, size

    descs = []
    per = total_mib // layers
    for i in range(layers):
        payload = os.path.join(root, f"payload{i}")
        with open(payload, "wb") as f:
            for _ in range(per):
                f.write(os.urandom(1 << 20))
        tar_path = os.path.join(root, f"layer{i}.tar")
        with tarfile.open(tar_path, "w") as tar:
            tar.add(payload, arcname=f"data{i}")
        os.remove(payload)
        descs.append(put(tar_path))
    config_path = os.path.join(root, "config.json")
    with open(config_path, "w") as f:
        json.dump({"architecture": "amd64", "os": "linux",
                   "rootfs": {"type": "layers", "diff_ids": [d for d, _ in descs]}}, f)
    config = put(config_path)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config[0], "size": config[1]},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                           for d, s in descs]}
    manifest_path = os.path.join(root, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    m = put(manifest_path)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": m[0], "size": m[1],
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return root


def skopeo(src, dest, creds):
    cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
    if creds and src.startswith("docker://"):
        cmd += ["--src-creds", creds]
    if creds and dest.startswith("docker://"):
        cmd += ["--dest-creds", creds]
    # skopeo's blob-info cache would turn every push after the first into cross-repository
    # mounts, measuring nothing: a fresh HOME holds it, or for root, /var/lib/containers.
    for stale in glob.glob("/var/lib/containers/cache/blob-info-cache-v1*"):
        os.remove(stale)
    home = tempfile.mkdtemp(prefix="kiln-bench-home-")
    try:
        return timed(cmd + [src, dest], env=dict(os.environ, HOME=home, XDG_DATA_HOME=home))[0]
    finally:
        shutil.rmtree(home, ignore_errors=True)


# What each side does that the other does not, so the figures are read for what they compare.
# Checked against Kiln's code and distribution's filesystem driver (its writers sync on commit).
DIFFERENCES = """\
What differs (besides the code):
  kiln:         token authentication (skopeo trades Basic credentials for a bearer token per
                repository; every request's token is verified); each blob, upload and manifest
                recorded in SQLite (WAL, synchronous=NORMAL); each blob's folder synced after
                the rename into place.
  distribution: no authentication (as configured here); no database (link files on disk).
  both:         the digest of every upload verified; each blob file synced (fsync) before it
                counts as stored."""


def turns(registries, round_no):
    """The registries in the order they go in round `round_no`: the first one alternates."""
    items = list(registries.items())
    return items if round_no % 2 == 0 else items[::-1]


def bench_big(registries, image, repeat):
    """Median push and pull seconds per registry, the registries taking turns going first."""
    times = {name: {"push": [], "pull": []} for name in registries}
    for i in range(repeat):
        for name, reg in turns(registries, i):
            creds = f"{reg.name}:{reg.secret}" if isinstance(reg, Kiln) else None
            ref = f"docker://{reg.host}/bench/big{i}:latest"
            times[name]["push"].append(skopeo(f"oci:{image}:latest", ref, creds))
            out = tempfile.mkdtemp(prefix="kiln-bench-pull-")
            times[name]["pull"].append(skopeo(ref, f"dir:{out}", creds))
            shutil.rmtree(out)
    return {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}


def small_push_load(reg, clients, seconds):
    """Requests/s of `clients` threads, each pushing distinct small images over one connection."""
    stop = time.time() + seconds
    counts = [0] * clients
    errors = []
    auth = reg.auth()

    def call(conn, method, path, body=b"", headers=None):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = auth
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        resp.read()
        return resp

    def push_blob(conn, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        call(conn, "HEAD", f"/v2/{repo}/blobs/{digest}")
        r = call(conn, "POST", f"/v2/{repo}/blobs/uploads/")
        location = r.getheader("Location")
        location = location.split("://", 1)[-1]
        location = location[location.index("/"):] if not location.startswith("/") else location
        sep = "&" if "?" in location else "?"
        r = call(conn, "PUT", f"{location}{sep}digest={digest}", data,
                 {"Content-Type": "application/octet-stream"})
        if r.status != 201:
            raise RuntimeError(f"blob upload answered {r.status}")
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}

    def worker(n):
        conn = http.client.HTTPConnection(reg.host, timeout=30)
        i = 0
        try:
            while time.time() < stop:
                repo = f"load/c{n}"
                layer = push_blob(conn, repo, os.urandom(2048))
                config = push_blob(conn, repo, json.dumps({"os": "linux", "architecture": "amd64",
                                                            "n": [n, i]}).encode())
                config["mediaType"] = "application/vnd.oci.image.config.v1+json"
                manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                       "config": config, "layers": [layer]}).encode()
                r = call(conn, "PUT", f"/v2/{repo}/manifests/t{i}", manifest, {"Content-Type": OCI_MANIFEST})
                if r.status != 201:
                    raise RuntimeError(f"manifest put answered {r.status}")
                counts[n] += 7
                i += 1
        except Exception as e:  # noqa: BLE001 - reported below, the figure is void
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"small pushes failed against {reg.host}: {errors[0]}")
    return sum(counts) / (time.time() - start)


def bench_small(registries, clients, seconds, repeat):
    """Median requests/s of the small-push load per registry, the registries taking turns."""
    rates = {name: [] for name in registries}
    for i in range(repeat):
        for name, reg in turns(registries, i):
            rates[name].append(small_push_load(reg, clients, seconds))
    return {name: statistics.median(r) for name, r in rates.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--image-mib", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=32)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "kiln"], cwd=ROOT, check=True)

    registries = {"kiln": Kiln(), "distribution": Distribution()}
    image = big_image(args.image_mib)
    print(DIFFERENCES, flush=True)
    try:
        big = bench_big(registries, image, args.repeat)
        mib = args.image_mib
        for op in ("push", "pull"):
            k, d = big["kiln"][op], big["distribution"][op]
            print(f"{op} of a {mib} MiB image (skopeo, 4 layers): kiln {k:.1f}s ({mib / k:.0f} MiB/s) vs"
                  f" distribution {d:.1f}s ({mib / d:.0f} MiB/s) = {d / k:.2f}x throughput"
                  f" (target >= 1.0x; medians of {args.repeat})", flush=True)
        rates = bench_small(registries, args.clients, args.seconds, args.repeat)
        print(f"{args.clients} concurrent small-image pushes: kiln {rates['kiln']:.0f} req/s vs distribution"
              f" {rates['distribution']:.0f} req/s = {rates['kiln'] / rates['distribution']:.2f}x"
              f" (target >= 1.0x; medians of {args.repeat} rounds of {args.seconds:.0f}s)", flush=True)
        print(f"server peak RSS: kiln {registries['kiln'].peak_rss_mib():.0f} MiB,"
              f" distribution {registries['distribution'].peak_rss_mib():.0f} MiB")
    finally:
        for r in registries.values():
            r.stop()
        shutil.rmtree(image, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
