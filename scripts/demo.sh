#!/usr/bin/env bash
# The main job on the embedded defaults: `kiln serve` (SQLite + files in ./kiln-data, one
# embedded worker, its own registry on the same port) and a `kiln build` of a sample app,
# then `docker pull` of the result from Kiln's registry with the owner token.
# Leaves the server running in the background and prints how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q
KILN=target/release/kiln
export KILN_SERVER=${KILN_SERVER:-http://127.0.0.1:8080}

if ! curl -fsS "$KILN_SERVER/healthz" >/dev/null 2>&1; then
  nohup "$KILN" serve >kiln-serve.log 2>&1 &
  echo "kiln serve started (pid $!, log in kiln-serve.log)"
  for _ in $(seq 1 50); do curl -fsS "$KILN_SERVER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
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

# The first start stored the owner token where the CLI finds it; docker logs in with it.
host=${KILN_SERVER#http://}
credentials=${KILN_CREDENTIALS_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/kiln/credentials.json}
jq -r --arg s "$KILN_SERVER" '.servers[$s].token' "$credentials" |
  docker login "$host" -u owner --password-stdin
docker run --rm --pull always "$host/hello:latest"
echo "Stop the server with: pkill -f 'kiln serve'"
