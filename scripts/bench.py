#!/usr/bin/env python3
"""Kiln benchmarks. Prints figures; passes or fails nothing.

Needs what scripts/setup.sh installs (Docker engine, registry on 127.0.0.1:5000, busybox base
image, pigz). Runs on one machine, against the same engine and registry for every figure:

1. dispatch latency: run queued -> leased by an idle worker, p50/p95 over N tiny runs;
2. overhead: `kiln build` wall time / the same BuildKit build + push done directly with the
   Docker CLI, for a small context, cold (--no-cache) and warm;
3. upload of a large context (default 1 GiB in 50,000 files): kiln vs `tar c | gzip -1 | curl`
   and vs `tar c | pigz -1 | curl` (gzip on every core), peak RSS of client and server, and an
   unchanged re-upload;
4. a linux/amd64 + linux/arm64 build (one index) vs the same two BuildKit builds + pushes;
5. a git context from a loopback smart-HTTP server vs `git clone --depth 1` + the same build,
   both without `.git` in the build context (Kiln drops it; the baseline's `.dockerignore` does).

`--depth N` runs only the queue-depth scenario instead (no engine needed): see bench_depth.
`--webhooks` runs only the git webhook scenario (no engine needed): see bench_webhooks.
`--base-image N` runs only the base-image trigger scenario (N pushes): see
bench_base_image_trigger.

Usage: scripts/bench.py [--runs 100] [--repeat 5] [--upload-mib 1024] [--upload-files 50000]
       scripts/bench.py --depth 10000
       scripts/bench.py --webhooks [--runs 100] [--webhook-rate 100] [--webhook-seconds 10]
       scripts/bench.py --base-image 20
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# KILN_BENCH_BIN: measure another build of kiln (e.g. a debug one) instead of building this one.
KILN = os.environ.get("KILN_BENCH_BIN") or os.path.join(ROOT, "target", "release", "kiln")
REGISTRY = "127.0.0.1:5000"
BASE = f"{REGISTRY}/busybox:latest"
# Debian's docker.io client has BuildKit built in; newer clients need the buildx plugin.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


class Server:
    """A `kiln serve` process on a port it picks itself (read back from its log)."""

    def __init__(self, workers, extra=()):
        self.dir = tempfile.mkdtemp(prefix="kiln-bench-")
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        # The server writes its owner token here on first start; the CLI finds it there.
        self.credentials = os.path.join(self.dir, "credentials.json")
        self.proc = subprocess.Popen(
            [KILN, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data"),
             "--credentials-file", self.credentials,
             "--registry", REGISTRY, "--workers", str(workers), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            self.log.seek(0)
            m = re.search(r"addr=(127\.0\.0\.1:\d+)", self.log.read())
            if m:
                self.url = f"http://{m.group(1)}"
                with open(self.credentials) as f:
                    self.token = json.load(f)["servers"][self.url]["token"]
                return
            time.sleep(0.05)
        raise SystemExit("kiln serve did not start: see " + self.log.name)

    def env(self, cache):
        return dict(os.environ, KILN_SERVER=self.url, XDG_CACHE_HOME=cache,
                    KILN_CREDENTIALS_FILE=self.credentials)

    def peak_rss_mib(self):
        return vm_hwm(self.proc.pid)

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=600) as resp:
            raw = resp.read()
            return json.loads(raw) if raw and resp.headers.get_content_type() == "application/json" else raw

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def vm_hwm(pid):
    """Peak resident memory (MiB) of a running process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(cmd, env=None, cwd=None):
    """Wall seconds and peak RSS (MiB) of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            shell=isinstance(cmd, str))
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {cmd}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, err


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def small_context():
    d = tempfile.mkdtemp(prefix="kiln-bench-ctx-")
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(f"FROM {BASE}\nCOPY . /app\nRUN ls -R /app | wc -l > /app/count && echo built\n")
    for i in range(50):
        with open(os.path.join(d, f"src{i}.txt"), "w") as f:
            f.write(f"file {i}\n" * 200)
    return d


def bench_dispatch(runs):
    server = Server(workers=1)
    try:
        ctx = tempfile.mkdtemp(prefix="kiln-bench-tiny-")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {BASE}\n")
        cache = tempfile.mkdtemp()
        out = subprocess.run([KILN, "build", "--no-push", "--no-wait", "-o", "json", ctx],
                             env=server.env(cache), capture_output=True, text=True, check=True)
        first = json.loads(out.stdout)
        server.api("GET", f"/api/runs/{first['id']}/logs?follow=true")
        spec = {"context": {"kind": "upload", "digest": first["contextDigest"]}, "push": False}
        latencies = []
        for _ in range(runs):
            run = server.api("POST", "/api/runs", spec)
            # The follow stream ends when the run does: the worker is idle again after it.
            server.api("GET", f"/api/runs/{run['id']}/logs?follow=true")
            done = server.api("GET", f"/api/runs/{run['id']}")
            latencies.append(iso_ms(done["startedAt"]) - iso_ms(done["createdAt"]))
        return latencies
    finally:
        server.stop()


def iso_ms(ts):
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


def bench_overhead(repeat):
    server = Server(workers=1)
    ctx = small_context()
    cache = tempfile.mkdtemp()
    repo = f"{REGISTRY}/kiln-bench/overhead"
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    results = {}
    try:
        for mode, flags in (("cold", ["--no-cache"]), ("warm", [])):
            kiln_t, direct_t = [], []
            # One untimed round primes the cache for the warm figures.
            rounds = repeat + (1 if mode == "warm" else 0)
            for i in range(rounds):
                k, _, _ = timed([KILN, "build", *flags, "-t", f"{repo}:kiln-{mode}", ctx], env=server.env(cache))
                tag = f"{repo}:direct-{mode}"
                d, _, _ = timed(f"{DOCKER} build -q {' '.join(flags)} -t {tag} {ctx} && {DOCKER} push -q {tag}", env=env)
                if mode == "warm" and i == 0:
                    continue
                kiln_t.append(k)
                direct_t.append(d)
            results[mode] = (statistics.median(kiln_t), statistics.median(direct_t))
        return results
    finally:
        server.stop()
        shutil.rmtree(ctx, ignore_errors=True)


def make_big_context(total_mib, files):
    d = tempfile.mkdtemp(prefix="kiln-bench-big-")
    size = total_mib * (1 << 20) // files
    text = (b"fn main() { println!(\"hello, world\"); }\n" * (size // 40 + 1))[: size // 2]
    per_dir = 500
    for i in range(files):
        sub = os.path.join(d, f"d{i // per_dir:03}")
        if i % per_dir == 0:
            os.makedirs(sub)
        with open(os.path.join(sub, f"f{i:05}.bin"), "wb") as f:
            # Half source-like text, half random: compresses to a bit over half, like real trees.
            f.write(text + os.urandom(size - len(text)))
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(f"FROM {BASE}\nCOPY . /ctx\n")
    return d


def bench_upload(total_mib, files):
    ctx = make_big_context(total_mib, files)
    subprocess.run(f"tar c -C {ctx} . > /dev/null", shell=True, check=True)  # warm the page cache
    nbytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(ctx) for f in fs)
    mib = nbytes / (1 << 20)
    server = Server(workers=0, extra=["--max-context-size", "8GiB"])
    try:
        cache = tempfile.mkdtemp()
        baselines = {compressor: upload_baseline(server, ctx, compressor) for compressor in ("gzip -1", "pigz -1")}
        kiln_t, kiln_rss, _ = timed([KILN, "build", "--no-push", "--no-wait", ctx], env=server.env(cache))
        again_t, _, _ = timed([KILN, "build", "--no-push", "--no-wait", ctx], env=server.env(cache))
        return {"mib": mib, "files": files, "baselines": baselines, "kiln_s": kiln_t, "again_s": again_t,
                "client_rss": kiln_rss, "server_rss": server.peak_rss_mib()}
    finally:
        server.stop()
        shutil.rmtree(ctx, ignore_errors=True)


def upload_baseline(server, ctx, compressor):
    """Seconds for `tar c | <compressor> | curl` to upload the context to the same endpoint."""
    seconds, _, _ = timed(
        f"tar c -C {ctx} . | {compressor} | curl -sS -f -X POST -H 'Content-Type: application/gzip'"
        f" -H 'Authorization: Bearer {server.token}' -T - {server.url}/api/contexts")
    return seconds


def print_upload(up):
    kiln_rate = up["mib"] / up["kiln_s"]
    print(f"upload of {up['mib']:.0f} MiB in {up['files']} files: kiln {up['kiln_s']:.1f}s ({kiln_rate:.1f} MiB/s)",
          flush=True)
    for compressor, target in (("gzip -1", "target >= 0.8x"), ("pigz -1", "goal >= 1.0x")):
        seconds = up["baselines"][compressor]
        rate = up["mib"] / seconds
        print(f"  vs tar|{compressor}|curl {seconds:.1f}s ({rate:.1f} MiB/s) = {kiln_rate / rate:.2f}x ({target})",
              flush=True)
    print(f"upload peak RSS: client {up['client_rss']:.0f} MiB, server {up['server_rss']:.0f} MiB (target <= 100 MiB each)")
    print(f"unchanged re-upload: {up['again_s']:.2f}s = {100 * up['again_s'] / up['kiln_s']:.1f}% of the first"
          f" (target <= 5%)")


class GitHttp:
    """`git http-backend` behind Python's HTTP server on a port it picks itself."""

    def __init__(self, root):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.cgi()

            def do_POST(self):
                self.cgi()

            def cgi(self):
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                           REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(length),
                           HTTP_GIT_PROTOCOL=self.headers.get("Git-Protocol", ""), REMOTE_ADDR="127.0.0.1")
                body = self.rfile.read(length) if length else b""
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, rest = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def git_repo(files):
    root = tempfile.mkdtemp(prefix="kiln-bench-git-")
    work = os.path.join(root, "work")
    os.makedirs(work)
    run = lambda *a: subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *a], cwd=work,
                                    check=True, capture_output=True)
    run("init", "-q", "-b", "main")
    for i in range(files):
        sub = os.path.join(work, f"src{i // 200:02}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:04}.txt"), "wb") as f:
            f.write((f"line {i}\n" * 400).encode() + os.urandom(2048))
    with open(os.path.join(work, "Dockerfile"), "w") as f:
        f.write(f"FROM {BASE}\nCOPY . /src\nRUN du -s /src\n")
    run("add", "-A")
    run("commit", "-q", "-m", "one")
    # A second commit, so a depth-1 fetch has history to skip.
    with open(os.path.join(work, "more.txt"), "w") as f:
        f.write("more\n")
    run("add", "-A")
    run("commit", "-q", "-m", "two")
    subprocess.run(["git", "clone", "-q", "--bare", work, os.path.join(root, "app.git")], check=True)
    return root


def bench_git(repeat):
    root = git_repo(2000)
    git = GitHttp(root)
    server = Server(workers=1)
    cache = tempfile.mkdtemp()
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    try:
        url = f"{git.url}/app.git"
        kiln_t, direct_t = [], []
        for i in range(repeat + 1):
            k, _, _ = timed([KILN, "build", "--no-push", f"{url}#main"], env=server.env(cache))
            clone = tempfile.mkdtemp()
            # Kiln builds a git context without `.git`; `docker build` of a clone would send it,
            # and a fresh `.git` every round would make the baseline's COPY miss the cache.
            d, _, _ = timed(f"git clone -q --depth 1 -b main {url} {clone}/c"
                            f" && printf '.git\\n.dockerignore\\n' > {clone}/c/.dockerignore"
                            f" && {DOCKER} build -q {clone}/c", env=env)
            shutil.rmtree(clone, ignore_errors=True)
            if i > 0:  # the first round warms BuildKit's cache for both
                kiln_t.append(k)
                direct_t.append(d)
        return statistics.median(kiln_t), statistics.median(direct_t)
    finally:
        server.stop()
        git.httpd.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def bench_multi_platform(repeat):
    server = Server(workers=1)
    ctx = small_context()
    cache = tempfile.mkdtemp()
    repo = f"{REGISTRY}/kiln-bench/multi"
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    try:
        kiln_t, direct_t = [], []
        for _ in range(repeat):
            k, _, _ = timed([KILN, "build", "--no-cache", "--platform", "linux/amd64,linux/arm64",
                             "-t", f"{repo}:kiln", ctx], env=server.env(cache))
            direct = " && ".join(
                f"{DOCKER} build -q --no-cache --platform linux/{arch} -t {repo}:direct-{arch} {ctx}"
                f" && {DOCKER} push -q {repo}:direct-{arch}" for arch in ("amd64", "arm64"))
            d, _, _ = timed(direct, env=env)
            kiln_t.append(k)
            direct_t.append(d)
        return statistics.median(kiln_t), statistics.median(direct_t)
    finally:
        server.stop()
        shutil.rmtree(ctx, ignore_errors=True)


class Api:
    """One keep-alive connection to the API, for the depth scenario's many small requests."""

    def __init__(self, server, token=None):
        host, port = server.url[len("http://"):].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.token = token or server.token

    def call(self, method, path, body=None, raw=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            # The server closes connections idle past --idle-timeout: open a new one.
            self.conn.close()
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        out = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path}: {resp.status} {out[:300]!r}")
        return json.loads(out) if out else None


def cpu_ms(pid):
    """User + system CPU time of a process so far, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def submit_many(server, spec, count, threads):
    """Queues `count` runs from `threads` connections at once: runs per second."""
    import concurrent.futures
    per = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

    def one(n):
        api = Api(server)
        for _ in range(n):
            api.call("POST", "/api/runs", spec)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, per))
    return count / (time.perf_counter() - start)


def idle_worker(server, token, platform, stop):
    """A worker for a platform nothing is queued for, long-polling until `stop` is set."""
    api = Api(server, token)
    info = {"id": f"idle-{platform}", "name": "idle", "platforms": [platform], "protocol": 2}
    while not stop.is_set():
        api.call("POST", "/api/worker/lease", {"worker": info, "waitMs": 1000})


def bench_depth_at(depth, drain, submissions=200):
    """One fresh server with `depth` no-op runs queued and no worker: see bench_depth."""
    import io
    import tarfile
    import threading
    server = Server(workers=0, extra=["--queue-timeout", "0"])
    try:
        api = Api(server)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = f"FROM {BASE}\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        digest = api.call("POST", "/api/contexts", raw=buf.getvalue())["digest"]
        spec = {"context": {"kind": "upload", "digest": digest}, "push": False}
        token = api.call("POST", "/api/tokens", {"name": "bench-worker", "roles": ["worker"]})["secret"]
        worker = Api(server, token)
        fig = {}
        if depth:
            submit_many(server, spec, depth, 8)

        # Drain: a worker over the raw protocol takes and finishes `drain` runs, as fast as the
        # server hands them out (no build), from the head of a queue `depth` runs deep.
        submit_many(server, spec, drain, 8)
        me = {"id": "drainer-1", "name": "drainer", "platforms": ["linux/amd64"], "protocol": 2}
        claims = []
        cpu0, start = cpu_ms(server.proc.pid), time.perf_counter()
        for _ in range(drain):
            t = time.perf_counter()
            lease = worker.call("POST", "/api/worker/lease", {"worker": me, "waitMs": 0})
            claims.append((time.perf_counter() - t) * 1000)
            worker.call("POST", f"/api/worker/runs/{lease['runId']}/result",
                        {"attempt": lease["attempt"], "outcome": "Succeeded", "errorMessage": None,
                         "outputImages": []})
        elapsed = time.perf_counter() - start
        fig["claim_ms"] = pct(claims, 50)
        fig["drain_per_min"] = drain / elapsed * 60
        fig["cpu_per_run_ms"] = (cpu_ms(server.proc.pid) - cpu0) / drain

        # Starvation: one run for a platform behind the whole queue, and a worker for it.
        api.call("POST", "/api/runs", dict(spec, platform="linux/arm64"))
        arm = {"id": "arm-1", "name": "arm", "platforms": ["linux/arm64"], "protocol": 2}
        t = time.perf_counter()
        got = worker.call("POST", "/api/worker/lease", {"worker": arm, "waitMs": 3000})
        fig["starved"] = "no" if got else "yes"
        fig["arm_lease_ms"] = (time.perf_counter() - t) * 1000

        lists = []
        for _ in range(20):
            t = time.perf_counter()
            api.call("GET", "/api/runs?top=100")
            lists.append((time.perf_counter() - t) * 1000)
        fig["list_ms"] = pct(lists, 50)

        # Submissions, one at a time and from 8 connections, while a worker for a platform
        # nothing is queued for waits for work (it should cost nothing).
        stop = threading.Event()
        idle = threading.Thread(target=idle_worker, args=(server, token, "linux/s390x", stop))
        idle.start()
        cpu0 = cpu_ms(server.proc.pid)
        fig["seq_per_s"] = submit_many(server, spec, submissions, 1)
        fig["cpu_per_submit_ms"] = (cpu_ms(server.proc.pid) - cpu0) / submissions
        fig["conc_per_s"] = submit_many(server, spec, 2 * submissions, 8)
        stop.set()
        idle.join()
        return fig
    finally:
        server.stop()


def bench_depth(depth, drain):
    """The queue at depth (issue 9): with no worker, queue `depth` no-op runs through the API
    (8 connections), then measure what one worker and the API's users see. Claim time is the
    round trip of a lease request that finds a run at once (`waitMs` 0), the drain rate that of
    a worker speaking the raw protocol that reports each run Succeeded as soon as it has it, so
    both are the server's own cost. Prints one row per depth: 0, then `depth`."""
    print("queued | claim p50 | drain | server CPU/run | run list 100 p50 | submissions/s seq | "
          "8 concurrent | CPU/submission (idle s390x worker) | starved arm64 run", flush=True)
    for d in (0, depth):
        f = bench_depth_at(d, drain)
        print(f"{d:>6} | {f['claim_ms']:.1f} ms | {f['drain_per_min']:.0f} runs/min | {f['cpu_per_run_ms']:.1f} ms"
              f" | {f['list_ms']:.1f} ms | {f['seq_per_s']:.0f} | {f['conc_per_s']:.0f}"
              f" | {f['cpu_per_submit_ms']:.1f} ms | {f['starved']} ({f['arm_lease_ms']:.0f} ms)", flush=True)


def bench_webhooks(rate, seconds, latency_runs):
    """Git webhooks (issue 11): a server with no worker, so every run stays queued, and one
    task whose commit trigger takes any branch. Latency: signed GitHub push deliveries sent one
    at a time, each to a new branch (so each queues a run rather than coalescing), timed from
    request to the 202 that answers once the run is queued. Sustained: `rate` deliveries per
    second for `seconds` from 4 connections, every 10th a redelivery of the one before; then
    the database must hold exactly one run per new delivery, and every redelivery must have
    been answered as a duplicate."""
    import concurrent.futures
    import hashlib
    import hmac
    import sqlite3
    server = Server(workers=0, extra=["--queue-timeout", "0"])
    try:
        task = Api(server).call("POST", "/api/tasks", {
            "name": "hook-bench", "context": "https://git.example.com/org/app.git#main",
            "images": ["bench:<<.Run.Commit>>"],
            "sourceTriggers": {"commitTriggerEnabled": True, "triggerBranch": "*"}})
        path = task["sourceTriggers"]["webhookPath"]
        secret = task["sourceTriggers"]["webhookSecret"].encode()
        host, port = server.url[len("http://"):].split(":")

        def deliver(conn, delivery, n):
            body = json.dumps({"ref": f"refs/heads/b{n}", "after": f"{n + 1:040x}",
                               "commits": [{"added": ["a"], "removed": [], "modified": []}],
                               "repository": {"default_branch": "main"}}).encode()
            sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            t = time.perf_counter()
            conn.request("POST", path, body=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            return resp.status, answer, (time.perf_counter() - t) * 1000

        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        lat = []
        for n in range(latency_runs):
            status, answer, ms = deliver(conn, f"lat-{n}", n)
            if status != 202:
                raise SystemExit(f"delivery {n}: {status} {answer}")
            lat.append(ms)

        total = rate * seconds
        start = time.perf_counter() + 0.1

        def sender(k):
            c = http.client.HTTPConnection(host, int(port), timeout=60)
            out = []
            for i in range(k, total, 4):
                time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                repeat = i % 10 == 9
                n = latency_runs + (i - 1 if repeat else i)
                delivery = f"s-{i - 1 if repeat else i}"
                status, answer, ms = deliver(c, delivery, n)
                out.append((delivery, status, answer, ms))
            return out

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = [r for part in pool.map(sender, range(4)) for r in part]
        elapsed = time.perf_counter() - start
        # A redelivery may overtake its original (another connection): per delivery ID, one
        # answer must have queued a run and any other must say "duplicate", in either order.
        by_id = {}
        for delivery, status, answer, _ in results:
            by_id.setdefault(delivery, []).append((status, answer))
        queued = [a for answers in by_id.values() for s, a in answers if s == 202]
        dups = [a for answers in by_id.values() for s, a in answers
                if s == 200 and "duplicate" in a.get("verdict", "")]
        once = sum(1 for answers in by_id.values() if sum(1 for s, _ in answers if s == 202) == 1)
        run_ids = {a.get("runId") for a in queued}
        db = sqlite3.connect(os.path.join(server.dir, "data", "kiln.db"))
        runs = db.execute("SELECT count(*) FROM runs WHERE trigger = 'Commit'").fetchone()[0]
        kept = db.execute("SELECT count(*) FROM hook_deliveries WHERE authentic = 1").fetchone()[0]
        db.close()
        return {
            "lat": lat, "sent": len(results), "per_s": len(results) / elapsed,
            "ids": len(by_id), "once": once, "distinct_runs": len(run_ids),
            "dups": len(dups), "repeats": len(results) - len(by_id), "runs": runs,
            "expected_runs": latency_runs + len(by_id),
            "kept": kept, "load_lat": [r[3] for r in results],
        }
    finally:
        server.stop()


def bench_base_image_trigger(repeat):
    """A base image pushed to Kiln's registry -> its dependant task's run queued: the time
    from the tag's move (its lastUpdateTime) to the triggered run's createdAt, both stamped by
    the server. Each round moves the tag between busybox's index and its amd64 manifest."""
    import http.server
    import io
    import tarfile
    import threading
    server = Server(workers=1)
    try:
        own = server.url.removeprefix("http://")
        base = f"{own}/bench/base:latest"
        creds = f"owner:{server.token}"

        def push(all_platforms):
            cmd = ["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                   f"--dest-creds={creds}", f"docker://{BASE}", f"docker://{base}"]
            subprocess.run(cmd[:2] + (["--all"] if all_platforms else []) + cmd[2:],
                           check=True, capture_output=True)

        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w:gz") as t:
            body = f"FROM {base}\nRUN echo app > /app\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        payload = tar.getvalue()

        class Tarball(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tarball)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        push(True)
        server.api("POST", "/api/tasks", {
            "name": "app", "context": f"http://127.0.0.1:{httpd.server_port}/ctx.tar.gz",
            "images": [f"{own}/bench/app:latest"]})
        run = server.api("POST", "/api/tasks/app/runs", {})
        server.api("GET", f"/api/runs/{run['id']}/logs?follow=true")
        latencies = []
        for i in range(repeat):
            seen = {r["id"] for r in server.api("GET", "/api/tasks/app/runs")["runs"]}
            push(i % 2 == 1)
            tag = server.api("GET", "/api/registry/repositories/bench/base/_tags/latest")
            deadline = time.time() + 60
            new = []
            while not new and time.time() < deadline:
                new = [r for r in server.api("GET", "/api/tasks/app/runs")["runs"] if r["id"] not in seen]
                time.sleep(0.01)
            if not new:
                raise SystemExit("the base-image push triggered no run within 60 s")
            latencies.append(iso_ms(new[0]["createdAt"]) - iso_ms(tag["lastUpdateTime"]))
            server.api("GET", f"/api/runs/{new[0]['id']}/logs?follow=true")
        httpd.shutdown()
        return latencies
    finally:
        server.stop()



def print_webhooks(f):
    print(f"webhook delivery -> run queued (GitHub push, signed, one at a time): p50 {pct(f['lat'], 50):.1f} ms,"
          f" p95 {pct(f['lat'], 95):.1f} ms over {len(f['lat'])} (target p95 <= 20 ms)", flush=True)
    print(f"webhooks sustained: {f['sent']} deliveries at {f['per_s']:.0f}/s (4 connections), p95"
          f" {pct(f['load_lat'], 95):.1f} ms; delivery IDs that queued exactly one run {f['once']}/{f['ids']}"
          f" ({f['distinct_runs']} distinct runs); redeliveries answered duplicate {f['dups']}/{f['repeats']};"
          f" Commit runs in the database {f['runs']} (expected {f['expected_runs']}); deliveries kept"
          f" {f['kept']} (newest 200 per task)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--upload-mib", type=int, default=1024)
    ap.add_argument("--upload-files", type=int, default=50000)
    ap.add_argument("--depth", type=int, default=0, help="run only the queue-depth scenario, this deep")
    ap.add_argument("--drain", type=int, default=100, help="runs the depth scenario's worker drains")
    ap.add_argument("--webhooks", action="store_true", help="run only the webhook scenario (no engine needed)")
    ap.add_argument("--webhook-rate", type=int, default=100, help="deliveries per second it sustains")
    ap.add_argument("--webhook-seconds", type=int, default=10)
    ap.add_argument("--base-image", type=int, default=0,
                    help="run only the base-image trigger scenario, this many pushes")
    args = ap.parse_args()
    if not os.environ.get("KILN_BENCH_BIN"):
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "kiln"], cwd=ROOT, check=True)
    if args.depth:
        return bench_depth(args.depth, args.drain)
    if args.webhooks:
        return print_webhooks(bench_webhooks(args.webhook_rate, args.webhook_seconds, args.runs))
    if args.base_image:
        lat = bench_base_image_trigger(args.base_image)
        print(f"base-image push to Kiln's registry -> dependant task run queued, over {len(lat)} pushes:"
              f" p50 {pct(lat, 50):.0f} ms, max {max(lat):.0f} ms (target <= 1000 ms)", flush=True)
        return 0

    lat = bench_dispatch(args.runs)
    print(f"dispatch latency over {len(lat)} runs: p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms"
          f" (target p95 <= 50 ms)", flush=True)

    over = bench_overhead(args.repeat)
    for mode, target in (("cold", 1.10), ("warm", 1.25)):
        k, d = over[mode]
        what = "unchanged rebuild" if mode == "warm" else "cold build"
        print(f"overhead {mode} ({what}): kiln build {k:.2f}s vs direct BuildKit build+push {d:.2f}s"
              f" = {k / d:.2f}x (target <= {target}x; medians of {args.repeat})", flush=True)

    k, d = bench_multi_platform(args.repeat)
    print(f"multi-platform (amd64+arm64, --no-cache): kiln build {k:.2f}s vs two direct BuildKit builds+pushes"
          f" {d:.2f}s = {k / d:.2f}x (target <= 1.1x; medians of {args.repeat})", flush=True)

    k, d = bench_git(args.repeat)
    print(f"git context over loopback smart HTTP (2,000 files, warm build cache): kiln build {k:.2f}s vs"
          f" git clone --depth 1 + docker build {d:.2f}s = {k / d:.2f}x (target <= 1.2x; medians of {args.repeat};"
          f" both build without .git: Kiln drops it, the baseline's .dockerignore excludes it)",
          flush=True)

    print_upload(bench_upload(args.upload_mib, args.upload_files))

if __name__ == "__main__":
    sys.exit(main())
