#!/usr/bin/env bash
# Times `make up` of the dev stack from nothing (after `make down`), then a
# second, no-op `make up`, and `make down`. Prints seconds for each.
#     bash benchmarks/make_up.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make -s bootstrap >/dev/null 2>&1
timed() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  printf '%-28s %6.1f s\n' "$*" "$(echo "$EPOCHREALTIME - $start" | bc)"
}
make -s down >/dev/null 2>&1 || true
timed make -s up
timed make -s up
timed make -s down
