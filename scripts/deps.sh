#!/usr/bin/env bash
# Installs what EMS needs to build, run and test, and nothing that is already there.
# Idempotent: a second run on a ready machine costs one dpkg query and no network.
# Called first by `make run` and `make test`; safe to run by hand (as root, or with sudo).
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git curl ca-certificates
  libmicrohttpd-dev libwebsockets-dev libev-dev librabbitmq-dev amqp-tools
  libpq-dev postgresql libsqlite3-dev sqlite3
  libjwt-dev libjansson-dev libsodium-dev libcurl4-openssl-dev libicu-dev libssl-dev
  libcmocka-dev rabbitmq-server nginx wrk
  clang-format clang-tidy cppcheck
  python3 python3-yaml python3-websocket openssl gettext-base procps iproute2 jq
  chromium docker-compose
  libgtk-4-dev xvfb xauth
)
# Node.js and npm build and test the web app; keep a newer Node that is already installed.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: ready"
