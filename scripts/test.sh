#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# Real servers the tests start on loopback: redis-server (the gateway's rate limits) and PostgreSQL
# (the production Dagster instance; Debian puts initdb under /usr/lib/postgresql/*/bin), and
# ShellCheck for the image's entrypoint script.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq && $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec .venv/bin/python -m pytest -n 2 "$@"
