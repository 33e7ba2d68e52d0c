#!/usr/bin/env bash
# The web app's Vitest suite (components and the API client); the ems binary
# passed as $1 is not needed here. Builds node_modules first if missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$root/scripts/web.sh"
cd "$root/web"
npx --no-install vitest run --reporter=dot
