#!/usr/bin/env bash
# Times `make up` of a stack from nothing (after `make down`), then a second,
# no-op `make up`, and `make down`. Prints seconds for each.
#     bash benchmarks/make_up.sh [STACK]      (default dev; docker: the docker target;
#                                             k8s, prod: the kubernetes target)
# On the docker target "from nothing" includes starting the stack's dockerd and
# building both images (their contexts are made once per machine beforehand:
# `--cold-contexts` removes and times them first).
# A kubernetes stack runs on the project's cluster: `make cluster-up` is timed first
# (with its phases: image import among them; `--cold-images` removes the cluster's
# image archive first, so that the images are built again), `make cluster-down` last.
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
cache=${PULUMI_DBCREDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-dbcreds}
kubernetes=$(sed -n 's/^ *dbcreds:target: *kubernetes.*/yes/p' "Pulumi.$stack.yaml")
if [ -n "$kubernetes" ]; then
  [ "${2:-}" = --cold-images ] && rm -f "$cache"/images/cluster-images-*.tar
  make -s cluster-down >/dev/null 2>&1 || true
  start=$EPOCHREALTIME
  make -s cluster-up 2>/dev/null | grep -v '^\[bootstrap\]'
  printf '%-40s %6.1f s\n' "make -s cluster-up" "$(echo "$EPOCHREALTIME - $start" | bc)"
fi
make -s down STACK="$stack" >/dev/null 2>&1 || true
timed make -s up STACK="$stack"
timed make -s up STACK="$stack"
timed make -s down STACK="$stack"
[ -n "$kubernetes" ] && timed make -s cluster-down
exit 0
