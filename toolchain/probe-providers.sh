#!/usr/bin/env bash
# Asks the Go module proxy whether each provider plugin pinned in requirements.txt
# (and the neighbours issue 2 names) can be had as a Go module: the first step of
# building it. Prints one line per module@version; exits 1 if any is refused.
set -uo pipefail
cd "$(dirname "$0")/.."
# Ask the module proxy only, never the repositories themselves.
GOPROXY=$(go env GOPROXY | sed 's/,direct$//; s/|direct$//')
export GOPROXY GOFLAGS=-mod=mod

probe() {
  local answer
  answer=$(go mod download -json "$1" 2>&1 | sed -n 's/^\t"\(Dir\|Error\)": "\(.*\)",\?$/\1 \2/p' | head -1)
  case "$answer" in
    Dir*) echo "served   $1" ;;
    *) echo "REFUSED  $1: ${answer#Error }"; return 1 ;;
  esac
}

status=0
for pkg in $(sed -n 's/^pulumi-\([a-z]*\)==.*/\1/p' requirements.txt); do
  [ "$pkg" = policy ] && continue     # pulumi-policy is Python only: no plugin
  [ "$pkg" = kubernetes ] && continue # built from a pseudo-version (below)
  version=$(sed -n "s/^pulumi-$pkg==\(.*\)/\1/p" requirements.txt)
  probe "github.com/pulumi/pulumi-$pkg/provider/v${version%%.*}@v$version" || status=1
done
# The releases whose bridge the proxy serves (../shared/notes/toolchain.md).
probe github.com/pulumi/pulumi-tls/provider/v5@v5.1.1 || status=1
probe github.com/pulumi/pulumi-random/provider/v4@v4.18.4 || status=1
probe github.com/pulumi/pulumi-command/provider@v1.2.1 || status=1
probe github.com/pulumi/pulumi-docker/provider/v4@v4.11.0 || status=1
# shellcheck source=versions.env
source toolchain/versions.env
probe "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_PROVIDER_MODULE" || status=1
exit $status
