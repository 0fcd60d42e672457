#!/bin/sh
# The sn46 image's entrypoint: one image, one process per container, picked by a role name.
#
#   sn46-entrypoint ROLE [ARGS...]        run a server; ARGS are appended to its command
#   sn46-entrypoint health [ROLE]         probe the server a container runs (exit 0 when healthy)
#   sn46-entrypoint --print ROLE [ARGS]   print the command a role runs, one argument a line; run nothing
#   sn46-entrypoint COMMAND [ARGS...]     run any other command as given: `sn46 demo seed`, `bash`, and
#                                         `dagster api execute_run ...`, which Dagster's run launchers
#                                         (K8s, ECS) start in this image
#
# Roles (default ports):
#   code-location  the Dagster code location, a gRPC server            (4000)
#   webserver      dagster-webserver, the UI                          (3000)
#   daemon         dagster-daemon: schedules, sensors, the run queue  (no port)
#   gateway        the upload gateway (FastAPI on uvicorn)            (8000)
#   inference      `sn46 serve`, the price-model inference server     (8080)
#
# Variables: SN46_HOST (bind address, default 0.0.0.0), SN46_PORT (the role's port), DAGSTER_WORKSPACE
# (webserver and daemon; default $DAGSTER_HOME/workspace.yaml).
#
# A HEALTHCHECK command is a process of its own that does not see the container's command, so a role
# records its name in $SN46_ROLE_FILE (default /tmp/sn46-role) before it starts, for `health` to read.
set -eu

ROLES="code-location webserver daemon gateway inference"
ROLE_FILE="${SN46_ROLE_FILE:-/tmp/sn46-role}"

usage() {
    sed -n '2,19s/^# \{0,1\}//p' "$0"
}

default_port() {
    case "$1" in
        code-location) echo 4000 ;;
        webserver) echo 3000 ;;
        gateway) echo 8000 ;;
        inference) echo 8080 ;;
    esac
}

is_role() {
    case " $ROLES " in *" $1 "*) return 0 ;; esac
    return 1
}

# start MODE ROLE [ARGS...]: exec the role's command (MODE exec) or print it, one argument a line (print).
start() {
    mode=$1
    role=$2
    shift 2
    host="${SN46_HOST:-0.0.0.0}"
    port="${SN46_PORT:-$(default_port "$role")}"
    workspace="${DAGSTER_WORKSPACE:-${DAGSTER_HOME:-.}/workspace.yaml}"
    case "$role" in
        code-location)
            set -- dagster code-server start -h "$host" -p "$port" -m sn46_pipelines.definitions "$@" ;;
        webserver)
            set -- dagster-webserver -h "$host" -p "$port" -w "$workspace" "$@" ;;
        daemon)
            set -- dagster-daemon run -w "$workspace" "$@" ;;
        gateway)
            set -- python -m sn46_pipelines.gateway --host "$host" --port "$port" "$@" ;;
        inference)
            set -- sn46 serve --host "$host" --port "$port" "$@" ;;
    esac
    if [ "$mode" = print ]; then
        printf '%s\n' "$@"
        exit 0
    fi
    printf '%s\n' "$role" > "$ROLE_FILE" 2>/dev/null || true
    exec "$@"
}

# Exit 0 when the server of role $1 answers as healthy on this container's loopback.
health() {
    role=${1:-}
    if [ -z "$role" ] && [ -r "$ROLE_FILE" ]; then
        role=$(cat "$ROLE_FILE")
    fi
    if [ -z "$role" ]; then
        echo "sn46-entrypoint health: no server role runs in this container; nothing to probe" >&2
        exit 0
    fi
    is_role "$role" || { echo "sn46-entrypoint health: unknown role '$role' (roles: $ROLES)" >&2; exit 64; }
    port="${SN46_PORT:-$(default_port "$role")}"
    case "$role" in
        code-location) exec dagster api grpc-health-check -p "$port" ;;
        daemon) exec dagster-daemon liveness-check ;;
        webserver) exec python - "http://127.0.0.1:$port/server_info" <<'EOF'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=4)  # raises (exit 1) on a refused connection or an HTTP error
EOF
            ;;
        gateway) exec python - "http://127.0.0.1:$port/healthcheck" <<'EOF'
import json, sys, urllib.request
status = json.load(urllib.request.urlopen(sys.argv[1], timeout=4))["status"]
sys.exit(0 if status == "ok" else f"gateway status: {status}")
EOF
            ;;
        inference) exec python - "http://127.0.0.1:$port/health" <<'EOF'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=4)  # 503 until a model version is loaded
EOF
            ;;
    esac
}

if [ $# -eq 0 ]; then
    usage >&2
    exit 64
fi
case "$1" in
    -h|--help) usage; exit 0 ;;
    health) shift; health "$@" ;;
    --print)
        shift
        if [ $# -eq 0 ] || ! is_role "$1"; then
            echo "sn46-entrypoint --print: name a role ($ROLES)" >&2
            exit 64
        fi
        start print "$@" ;;
esac
if is_role "$1"; then
    start exec "$@"
fi
rm -f "$ROLE_FILE" 2>/dev/null || true
exec "$@"
