#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
if ! command -v redis-server >/dev/null; then
  # The gateway's rate limits are tested against a real redis-server on loopback.
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq && $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
exec .venv/bin/python -m pytest -n 2 "$@"
