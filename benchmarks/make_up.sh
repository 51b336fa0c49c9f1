#!/usr/bin/env bash
# Times `make up` of a stack from nothing (after `make down`), then a second,
# no-op `make up`, and `make down`. Prints seconds for each.
#     bash benchmarks/make_up.sh [STACK]      (default dev; docker: the docker target)
# On the docker target "from nothing" includes starting the stack's dockerd and
# building both images (their contexts are made once per machine beforehand:
# `--cold-contexts` removes and times them first).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}
make -s bootstrap-stack STACK="$stack" >/dev/null 2>&1
timed() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  printf '%-40s %6.1f s\n' "$*" "$(echo "$EPOCHREALTIME - $start" | bc)"
}
if [ "${2:-}" = --cold-contexts ]; then
  rm -rf "${PULUMI_DBCREDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-dbcreds}/images"
  timed .venv/bin/python -m components.docker.images
fi
make -s down STACK="$stack" >/dev/null 2>&1 || true
timed make -s up STACK="$stack"
timed make -s up STACK="$stack"
timed make -s down STACK="$stack"
