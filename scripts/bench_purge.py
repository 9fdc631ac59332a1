#!/usr/bin/env python3
"""Purge at scale, against Kiln's own registry. Prints figures; passes or fails nothing.

A fresh `kiln serve` (release build, embedded worker) is filled over the registry API with
small, distinct images, then purged with `kiln purge` exactly as a user would run it:

1. the dry run of 10,000 tags in one repository (target <= 2 s);
2. plan and delete 10,000 tags in one repository, `--concurrency 8` and `--concurrency 1`, each
   on its own identical copy, and their ratio (target <= 0.2);
3. the same for 1,000 repositories of 10 tags each.

The times are the CLI's wall time: submission, queueing, the worker's listing, planning and
deletions, and the streamed log. Every image is its own manifest (one shared layer, a distinct
config), so each purge deletes tags and, with `--untagged`, as many manifests.

Usage: scripts/bench_purge.py [--tags 10000] [--repos 1000] [--per-repo 10]
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import KILN, ROOT, Server  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class Pusher:
    """One keep-alive connection pushing small images to Kiln's registry as its owner."""

    def __init__(self, server):
        self.host = server.url.removeprefix("http://")
        self.auth = "Basic " + base64.b64encode(f"owner:{server.token}".encode()).decode()
        self.conn = http.client.HTTPConnection(self.host, timeout=60)
        self.layer = os.urandom(1024)

    def call(self, method, path, body=b"", headers=None):
        h = dict(headers or {}, Authorization=self.auth)
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        resp.read()
        return resp

    def blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.call("HEAD", f"/v2/{repo}/blobs/{digest}").status != 200:
            r = self.call("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data,
                          {"Content-Type": "application/octet-stream"})
            if r.status != 201:
                raise RuntimeError(f"blob upload to {repo} answered {r.status}")
        return {"digest": digest, "size": len(data)}

    def image(self, repo, tag):
        layer = dict(self.blob(repo, self.layer), mediaType=OCI_LAYER)
        config = json.dumps({"os": "linux", "architecture": "amd64", "tag": [repo, tag]}).encode()
        config = dict(self.blob(repo, config), mediaType=OCI_CONFIG)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": config, "layers": [layer]}).encode()
        r = self.call("PUT", f"/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST})
        if r.status != 201:
            raise RuntimeError(f"manifest put {repo}:{tag} answered {r.status}")


def fill(server, images, threads=8):
    """Pushes every (repo, tag) of `images`, `threads` connections side by side."""
    errors = []

    def work(part):
        try:
            p = Pusher(server)
            for repo, tag in part:
                p.image(repo, tag)
        except Exception as e:  # noqa: BLE001 - reported below, the figures would be void
            errors.append(repr(e))

    parts = [images[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=work, args=(part,)) for part in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"filling the registry failed: {errors[0]}")


def purge(server, *args):
    """Wall seconds of one `kiln purge`, which must succeed, and its log's last lines."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        proc = subprocess.run([KILN, "purge", *args], env=server.env(cache),
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"kiln purge {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    tail = [line for line in proc.stdout.splitlines() if line.startswith("Number of")]
    return elapsed, tail


def scenario(server, label, images, filter_of):
    """Dry run, then concurrency 8 and 1 on two identical copies (prefixes `par` and `seq`)."""
    for copy in ("par", "seq"):
        fill(server, [(f"{copy}/{repo}", tag) for repo, tag in images])
    dry, _ = purge(server, "--filter", filter_of("par"), "--ago", "0d", "--untagged", "--dry-run")
    par, par_tail = purge(server, "--filter", filter_of("par"), "--ago", "0d", "--untagged",
                          "--concurrency", "8")
    seq, seq_tail = purge(server, "--filter", filter_of("seq"), "--ago", "0d", "--untagged",
                          "--concurrency", "1")
    print(f"{label}: dry run {dry:.2f}s; purge --concurrency 8 {par:.2f}s, --concurrency 1 {seq:.2f}s,"
          f" ratio {par / seq:.3f} (target <= 0.2) [{'; '.join(par_tail)}]", flush=True)
    if par_tail != seq_tail:
        print(f"  the two purges differ: {par_tail} vs {seq_tail}", flush=True)
    return dry


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=10000)
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--per-repo", type=int, default=10)
    args = ap.parse_args()
    if not os.environ.get("KILN_BENCH_BIN"):
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "kiln"], cwd=ROOT, check=True)
    server = Server(workers=1)
    try:
        one = [("big", f"t{i}") for i in range(args.tags)]
        dry = scenario(server, f"{args.tags:,} tags in one repository", one,
                       lambda copy: f"{copy}/big:.*")
        print(f"dry run of {args.tags:,} tags: {dry:.2f}s (target <= 2 s)", flush=True)
        many = [(f"r{r}", f"t{t}") for r in range(args.repos) for t in range(args.per_repo)]
        scenario(server, f"{args.repos:,} repositories x {args.per_repo} tags", many,
                 lambda copy: f"{copy}/r.*:.*")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
