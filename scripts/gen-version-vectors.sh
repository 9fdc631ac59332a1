#!/usr/bin/env bash
# Writes the version-comparison vectors that src/vuln/versions/tests.rs checks Kiln's
# comparators against. Every answer comes from the ecosystem's own tool, never from Kiln:
#   dpkg.txt    dpkg --compare-versions / --validate-version   (Debian, Ubuntu)
#   pep440.txt  Python `packaging` (pip install packaging)      (PyPI)
#   semver.txt  node's `semver` package (npm install semver)    (npm, crates.io, SEMVER ranges)
#   go.txt      golang.org/x/mod/semver (apt-get install golang-go golang-golang-x-mod-dev)
#   apk.txt     not generated here: no Alpine `apk` runs on Debian. It is osv-scalibr's
#               semantic/testdata/alpine-versions.txt (Apache-2.0, produced with
#               `apk version -t`), copied with its header; see that file.
#
# Inputs: hand-picked edge cases below plus a fixed sample of the versions named in the OSV
# data in ../shared/osv (OSV_DIR), so the vectors cover what real records contain.
#
# Format, one per line: `a < b`, `a = b`, `a > b`, or `! v` (the tool rejects v).
#
# Usage: scripts/gen-version-vectors.sh   (from the repository root)
set -euo pipefail

out=src/vuln/versions/testdata
osv=${OSV_DIR:-../shared/osv}
[ -d "$osv" ] || osv=/work/shared/osv
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
mkdir -p "$out"

# Versions named in the OSV records of one ecosystem folder, a fixed sample of at most N.
osv_versions() { # folder N strip_v
  python3 - "$osv/$1/all.zip" "$2" <<'EOF'
import json, random, sys, zipfile
path, n = sys.argv[1], int(sys.argv[2])
seen = set()
with zipfile.ZipFile(path) as z:
    for name in z.namelist():
        for a in json.loads(z.read(name)).get("affected", []):
            for r in a.get("ranges", []):
                if r["type"] != "GIT":
                    for e in r["events"]:
                        seen.update(v for v in e.values() if v not in ("0", "*"))
            seen.update(a.get("versions", []))
vs = sorted(seen)
random.Random(13).shuffle(vs)
print("\n".join(sorted(vs[:n])))
EOF
}

# Sort the valid versions with the tool's comparator, then write adjacent pairs (the order)
# and a fixed sample of random pairs (transitivity across the list), each asked of the tool.
python_pairs() { # prints pairs for versions on stdin; $1 = python expr module with cmp/valid
  python3 -c "
import functools, random, sys
sys.path.insert(0, '$tools')
import $1 as t
vs = list(dict.fromkeys(l.strip() for l in sys.stdin if l.strip()))
valid = [v for v in vs if t.valid(v)]
for v in vs:
    if not t.valid(v): print('!', v)
valid.sort(key=functools.cmp_to_key(t.cmp))
ops = {-1: '<', 0: '=', 1: '>'}
pairs = list(zip(valid, valid[1:]))
rng = random.Random(13)
pairs += [tuple(rng.sample(valid, 2)) for _ in range(2 * len(valid))]
for a, b in pairs:
    print(a, ops[t.cmp(a, b)], b)
"
}

cat > "$tools/dpkgtool.py" <<'EOF'
import subprocess
def valid(v):
    return subprocess.run(["dpkg", "--validate-version", v], capture_output=True).returncode == 0
def cmp(a, b):
    def ask(op):
        return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
    return -1 if ask("lt") else (0 if ask("eq") else 1)
EOF
cat > "$tools/pep440tool.py" <<'EOF'
from packaging.version import InvalidVersion, Version
def valid(v):
    try:
        Version(v)
        return True
    except InvalidVersion:
        return False
def cmp(a, b):
    a, b = Version(a), Version(b)
    return -1 if a < b else (0 if a == b else 1)
EOF

{
  echo "# dpkg $(dpkg-query -W -f='${Version}' dpkg) --compare-versions; written by scripts/gen-version-vectors.sh"
  {
    osv_versions "Debian:12" 40
    cat <<'EOF'
0
1.0
1.0-1
1:1.0-1
1:0.9
2:0.1
0:1.0
1.0~rc1
1.0~rc1-1
1.0~~
1.0~
1.0~a
1.0a
1.0+a
1.0.1
1.0-1~bpo12+1
1.0-1+deb12u1
1.0-1+deb12u2
1.0-1+b1
1.0-1.1
1.0-0
1.0-
1.00
1.000-1
3.0.11-1~deb12u2
3.0.15-1~deb12u1
2.36-9+deb12u9
1.2.13.dfsg-1
1:1.2.13.dfsg-1
7.88.1-10+deb12u12
252.38-1~deb12u1
1.0-a
1.0-A
1.0-1a
1.0-1.a
1.0-1-1
a1.0
1.0:1
-1.0
1.0_1
10
9
1.10
1.9
1.0.0~beta1+dfsg
1.0.0+dfsg~beta1
1.0~rc1~git1
1.0~~a
1.0+~
1.0~+
0:0
0:1.0-0
1.0-0.0
1.0a~
1.0A
1.0-1+b
EOF
  } | python_pairs dpkgtool
} > "$out/dpkg.txt"

{
  echo "# Python packaging $(python3 -c 'import packaging; print(packaging.__version__)'); written by scripts/gen-version-vectors.sh"
  {
    osv_versions PyPI 250
    cat <<'EOF'
0
1.0
1.0.0
1.0.0.0
v1.0
V1.0
1.0-1
1.0.post1
1.0post1
1.0.post
1.0-post1
1.0.rev1
1.0r1
1.0a1
1.0alpha1
1.0.a1
1.0-a1
1.0b1
1.0beta1
1.0c1
1.0rc1
1.0pre1
1.0preview1
1.0a
1.0.dev1
1.0dev1
1.0.dev
1.0a1.dev1
1.0a1.post1
1.0.post1.dev1
1.0+local
1.0+local.1
1.0+local.2
1.0+1
1.0+abc.5
1.0+LOCAL
1!1.0
1!0.5
2!1.0
01.0
1.01
1.1
1.10
1.9
2024.1.15
 1.0 
1.0.x
abc
1.0-beta.1
2.0.0-beta.1
1..0
1.0+
1.0+local-x
1.0_post1
EOF
  } | python_pairs pep440tool
} > "$out/pep440.txt"

# Node semver, strict parsing (no `loose`), as npm uses for versions in package.json.
(cd "$tools" && npm install --silent --no-save semver >/dev/null 2>&1)
node_pairs() {
  NODE_PATH="$tools/node_modules" node -e '
const semver = require("semver");
const vs = [...new Set(require("fs").readFileSync(0, "utf8").split("\n").map(s => s.trim()).filter(Boolean))];
const valid = vs.filter(v => semver.valid(v) !== null);
for (const v of vs) if (semver.valid(v) === null) console.log("!", v);
valid.sort(semver.compare);
// A fixed pseudo-random sequence (an LCG), so the file is the same on every run.
let seed = 13;
const rnd = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pairs = valid.slice(1).map((v, i) => [valid[i], v]);
for (let i = 0; i < valid.length; i++) {
  const a = rnd(valid.length); let b = rnd(valid.length - 1); if (b >= a) b++;
  pairs.push([valid[a], valid[b]]);
}
const ops = { "-1": "<", "0": "=", "1": ">" };
for (const [a, b] of pairs) console.log(a, ops[semver.compare(a, b)], b);
'
}
{
  echo "# node semver $(NODE_PATH="$tools/node_modules" node -p 'require("semver/package.json").version') compare (strict); written by scripts/gen-version-vectors.sh"
  {
    osv_versions crates.io 150
    osv_versions Go 100
    cat <<'EOF'
0.0.0
1.0.0
1.0.0-alpha
1.0.0-alpha.1
1.0.0-alpha.beta
1.0.0-beta
1.0.0-beta.2
1.0.0-beta.11
1.0.0-rc.1
1.0.0-0
1.0.0-1
1.0.0-a1
1.0.0-A
1.0.0-alpha-1
1.0.0+build.1
1.0.0+build.2
1.0.0-rc.1+build.1
1.0.0+incompatible
2.0.0
10.0.0
2.10.0
2.9.0
v1.2.3
V1.2.3
=1.2.3
1.2
1
01.2.3
1.02.3
1.0.0-01
1.0.0-alpha..1
1.0.0-
1.0.0+
1.2.3.4
1.2.3-αβ
0.0.0-20210101000000-abcdefabcdef
1.2.4-0.20210101000000-abcdefabcdef
EOF
  } | node_pairs
} > "$out/semver.txt"

# Go: golang.org/x/mod/semver, which the go command uses to order module versions.
mkdir -p "$tools/go/src/gen"
cat > "$tools/go/src/gen/main.go" <<'EOF'
package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

func main() {
	seen := map[string]bool{}
	var all, valid []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		v := strings.TrimSpace(sc.Text())
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		all = append(all, v)
		if semver.IsValid(v) {
			valid = append(valid, v)
		} else {
			fmt.Println("!", v)
		}
	}
	sort.SliceStable(valid, func(i, j int) bool { return semver.Compare(valid[i], valid[j]) < 0 })
	ops := map[int]string{-1: "<", 0: "=", 1: ">"}
	rng := rand.New(rand.NewSource(13))
	for i := 1; i < len(valid); i++ {
		fmt.Println(valid[i-1], ops[semver.Compare(valid[i-1], valid[i])], valid[i])
	}
	for range valid {
		a, b := valid[rng.Intn(len(valid))], valid[rng.Intn(len(valid))]
		fmt.Println(a, ops[semver.Compare(a, b)], b)
	}
}
EOF
{
  echo "# golang.org/x/mod/semver $(dpkg-query -W -f='${Version}' golang-golang-x-mod-dev) Compare, $(go version | cut -d' ' -f3); written by scripts/gen-version-vectors.sh"
  {
    osv_versions Go 200 | sed 's/^/v/'
    cat <<'EOF'
v0.0.0
v1.0.0
v1.0.0-rc.1
v1.0.0-beta
v1.0.0+incompatible
v2.0.0+incompatible
v2.1.0+incompatible
v1
v1.2
v1.2.3
v1.2.3-pre
v1.2.3-pre+meta
v1.2.3+meta
v0.0.0-20191109021931-daa7c04131f5
v0.0.0-20210101000000-abcdefabcdef
v1.2.4-0.20191109021931-daa7c04131f5
v1.2.3-pre.0.20191109021931-daa7c04131f5
v2.0.0-20180818164646-67afb5ed74ec+incompatible
1.2.3
v01.2.3
v1.2.3.4
v1.2.3-01
EOF
  } | GOPATH="$tools/go:/usr/share/gocode" GO111MODULE=off GOCACHE="$tools/cache" go run gen
} > "$out/go.txt"

wc -l "$out"/*.txt
