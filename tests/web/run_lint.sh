#!/usr/bin/env bash
# ESLint over the web app (web/eslint.config.js: the TypeScript rules and React's hooks rules,
# rules-of-hooks and exhaustive-deps as errors). The ems binary passed as $1 is not needed here.
# Installs node_modules first if missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$root/scripts/web.sh"
cd "$root/web"
npx --no-install eslint --max-warnings=0 .
