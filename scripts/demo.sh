#!/usr/bin/env bash
# The main job on the embedded defaults: `kiln serve` (SQLite + files in ./kiln-data, one
# embedded worker, its own registry on the same port) and a `kiln build` of a sample app,
# then `docker pull` of the result from Kiln's registry with the owner token.
# Leaves the server running in the background and ends by printing the PID to stop.
#
# KILN_PORT (default 8080) moves both the server it starts and the client; KILN_SERVER may be
# given instead, as http://127.0.0.1:<port>. A port something already listens on is refused:
# the demo never talks to a server it did not start.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "demo: $*" >&2
  exit 1
}

server=${KILN_SERVER:-}
server=${server%/}
server_port=${server:+${server#http://127.0.0.1:}}
if [ -n "${KILN_SERVER:-}" ] && ! [[ $server_port =~ ^[0-9]+$ ]]; then
  fail "KILN_SERVER=$KILN_SERVER: the demo starts its own server, so it must be http://127.0.0.1:<port> (or set KILN_PORT)"
fi
if [ -n "${KILN_PORT:-}" ] && [ -n "$server_port" ] && [ "$KILN_PORT" != "$server_port" ]; then
  fail "KILN_PORT=$KILN_PORT and KILN_SERVER=$KILN_SERVER name different ports; set one of them"
fi
port=${KILN_PORT:-${server_port:-8080}}
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  fail "KILN_PORT=$port is not a port number (1-65535)"
fi
export KILN_SERVER="http://127.0.0.1:$port"

# Bash's /dev/tcp connects only if something listens there: Kiln or not, it is not ours.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  fail "port $port is already in use (see: ss -ltnp 'sport = :$port'); stop what holds it, or run on another port: KILN_PORT=8081 $0"
fi

cargo build --release -q
KILN=target/release/kiln

# --listen beats a KILN_LISTEN in the environment, so the server cannot end up elsewhere.
nohup "$KILN" serve --listen "127.0.0.1:$port" >kiln-serve.log 2>&1 &
pid=$!
trap 'echo "The kiln server is still running (log in kiln-serve.log). Stop it with: kill $pid"' EXIT
echo "kiln serve started on $KILN_SERVER (pid $pid, log in kiln-serve.log)"
until curl -fsS "$KILN_SERVER/healthz" >/dev/null 2>&1; do
  # It exits at once if it cannot bind or start: say why rather than wait.
  if ! kill -0 "$pid" 2>/dev/null; then
    trap - EXIT
    tail -n 20 kiln-serve.log >&2
    fail "kiln serve exited before it answered on $KILN_SERVER (log above)"
  fi
  sleep 0.1
done

# The first start of a data directory stores its owner token under the address it served.
if ! "$KILN" run list --top 1 >/dev/null 2>&1; then
  fail "the kiln CLI has no working token for $KILN_SERVER: ${KILN_DATA_DIR:-./kiln-data} was probably first served on another port. Run the demo on that port, or set KILN_DATA_DIR to a new directory."
fi

app=$(mktemp -d)
cat >"$app/Dockerfile" <<'DOCKERFILE'
FROM 127.0.0.1:5000/busybox:latest
COPY hello.txt /hello.txt
RUN cat /hello.txt
CMD ["cat", "/hello.txt"]
DOCKERFILE
echo "Hello from Kiln" >"$app/hello.txt"

"$KILN" build -t 'hello:<<.Run.ID>>' -t hello:latest "$app"
"$KILN" run list --top 5
"$KILN" registry repository show-tags hello --detail

# Docker logs in to Kiln's registry with the token the CLI uses.
"$KILN" registry login
host=${KILN_SERVER#http://}
docker run --rm --pull always "$host/hello:latest"
