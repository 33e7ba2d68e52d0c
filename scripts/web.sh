#!/usr/bin/env bash
# Builds the web app into web/dist. Installs the npm packages first when web/node_modules is
# missing or older than package-lock.json (npm ci; npm install only when there is no lock file),
# and skips the build when web/dist is newer than every source. Quiet unless something fails:
# then it prints the tool's output and exits non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
cd "$web"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "web: node and npm are needed (scripts/deps.sh installs them)" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
  echo "web: Node.js 18 or later is needed, found $(node --version)" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "web: failed: $*" >&2
    exit 1
  fi
}

# The stamp records which lock file (and which Node major) node_modules was installed from.
stamp="node_modules/.ems-installed"
fingerprint() { echo "$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1) node$major"; }
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(fingerprint)" ]; then
  if [ -f package-lock.json ]; then
    run npm ci --no-audit --no-fund --loglevel=error
  else
    run npm install --no-audit --no-fund --loglevel=error
  fi
  fingerprint >"$stamp"
fi

# Up to date when dist/index.html is newer than every input of the build.
if [ -f dist/index.html ] && [ -z "$(find src public index.html vite.config.ts tsconfig.json package-lock.json \
  "$stamp" -newer dist/index.html -print -quit 2>/dev/null)" ]; then
  exit 0
fi

run npm run build --silent
[ -f dist/index.html ] || { echo "web: the build wrote no dist/index.html" >&2; exit 1; }
echo "web: built web/dist"
