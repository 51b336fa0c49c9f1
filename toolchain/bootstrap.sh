#!/usr/bin/env bash
# Sets up everything the project runs on, offline but for the package registries:
#   - the Python virtualenv (.venv) from requirements.txt;
#   - the Pulumi CLI and the Python language host, built from their Go modules
#     into a per-user cache keyed by version, so that other checkouts reuse them;
#   - the Python SDK's own shims (the program runner and the dynamic-provider
#     plugin), installed from the pulumi sdk/v3 Go module at the SDK's version;
#   - the Kubernetes provider plugin, built from its Go module (the Kubernetes
#     target renders manifests with it);
#   - .tools/bin, the folder `make env` puts on PATH;
#   - PostgreSQL 15's server binaries (Debian's), when missing.
# A warm run changes nothing and takes seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=versions.env
source toolchain/versions.env

cache=${PULUMI_DBCREDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-dbcreds}
tools="$root/.tools/bin"
mkdir -p "$cache" "$tools"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
# Modules come from the module proxy only: never fall back to fetching a repository directly.
GOPROXY=$(go env GOPROXY | sed 's/,direct$//; s/|direct$//')
export GOPROXY

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# The version a package is pinned to in requirements.txt.
pinned() {
  local v
  v=$(sed -n "s/^$1\(\[[a-z,]*\]\)\?==\([^ ;#]*\).*/\2/p" requirements.txt)
  [ -n "$v" ] || die "requirements.txt pins no version of $1"
  echo "$v"
}

venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "virtualenv .venv is up to date"
    return
  fi
  local start=$SECONDS
  say "virtualenv .venv: installing requirements.txt"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt \
    || die "pip could not install requirements.txt"
  echo "$want" > "$stamp"
  say "virtualenv .venv ready in $((SECONDS - start))s"
}

# go_build NAME VERSION MAIN_PACKAGE LDFLAGS MODULE...
# Builds MAIN_PACKAGE from the wrapper module toolchain/NAME (or toolchain/$MODULE_DIR)
# with each MODULE required at VERSION, into $cache/NAME/vVERSION/NAME (skipped
# when there). When $PREPARE names a function, it runs in the module's folder before tidy.
go_build() {
  local name=$1 version=$2 pkg=$3 ldflags=$4
  shift 4
  local out="$cache/$name/v$version/$name"
  if [ -x "$out" ]; then
    say "$name v$version: cached"
    return
  fi
  local start=$SECONDS work mod
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp "toolchain/${MODULE_DIR:-$name}/"* "$work/"
  say "$name v$version: building $pkg (minutes on 2 cores)"
  for mod in "$@"; do
    (cd "$work" && go mod edit -require="$mod@v$version") || die "$name: cannot require $mod@v$version"
  done
  if [ -n "${PREPARE:-}" ]; then
    (cd "$work" && "$PREPARE" "$version") || die "$name: $PREPARE failed"
  fi
  (cd "$work" && go mod tidy >"$work/tidy.log" 2>&1) || {
    cat "$work/tidy.log" >&2
    die "$name: the Go module proxy could not resolve $* at v$version"
  }
  mkdir -p "$(dirname "$out")"
  (cd "$work" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") \
    || die "$name: go build of $pkg at v$version failed"
  mv "$out.tmp" "$out"
  say "$name v$version: built in $((SECONDS - start))s"
}

# The folder of the pulumi sdk/v3 Go module at the Python SDK's version. It
# carries two scripts the Python SDK needs outside its wheel: the runner the
# language host starts for a program, and the plugin that serves dynamic providers.
sdk_module_dir() {
  module_dir "github.com/pulumi/pulumi/sdk/v3@v$(pinned pulumi)"
}

# module_dir MODULE@VERSION: the module's folder in Go's module cache (downloaded if needed).
module_dir() {
  local dir
  dir=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || die "the Go module proxy could not serve $1"
  echo "$dir"
}

# The Kubernetes provider, a native Go provider. Its main package embeds a
# schema file made at build time by its own generate.go (the module zip has
# only schema.json), so it is built in a writable copy of the module.
kubernetes_provider() {
  local version module=github.com/pulumi/pulumi-kubernetes
  version=$(pinned pulumi-kubernetes)
  local name=pulumi-resource-kubernetes
  local out="$cache/$name/v$version/$name"
  if [ -x "$out" ]; then
    say "$name v$version: cached"
    return
  fi
  local start=$SECONDS src work
  src=$(module_dir "$module/provider/v4@$PULUMI_KUBERNETES_PROVIDER_MODULE")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  say "$name v$version: building (about 8 minutes and 4.5 GB of memory on 2 cores)"
  (cd "$work" && go mod edit -replace "$module/sdk/v4=$module/sdk/v4@$PULUMI_KUBERNETES_GO_SDK") \
    || die "$name: cannot replace sdk/v4"
  (cd "$work/cmd/$name" && VERSION=$version go run generate.go) || die "$name: generate.go failed"
  mkdir -p "$(dirname "$out")"
  (cd "$work" && go build -trimpath -ldflags "-s -w -X $module/provider/v4/pkg/version.Version=$version" \
      -o "$out.tmp" "./cmd/$name") || die "$name: go build failed"
  mv "$out.tmp" "$out"
  say "$name v$version: built in $((SECONDS - start))s"
}

# k8s.io/kubernetes's staging modules, each replaced with its release: v1.X.Y -> v0.X.Y.
replace_kubernetes_staging() {
  local dir mod
  dir=$(module_dir "k8s.io/kubernetes@v$1")
  for mod in $(sed -n 's|^\t*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$dir/go.mod"); do
    go mod edit -replace "$mod=$mod@v0.${1#1.}" || return 1
  done
}

# PostgreSQL's server binaries come from Debian's postgresql-15, installed
# without the default cluster (the stack makes its own) when missing.
postgres_server() {
  local pg_bin=${DBCREDS_PG_BIN:-/usr/lib/postgresql/15/bin}
  if [ -x "$pg_bin/postgres" ]; then
    say "postgresql server: $("$pg_bin/postgres" --version)"
    return
  fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL 15 server binaries are missing from $pg_bin: install Debian's postgresql-15 (or set DBCREDS_PG_BIN)"
  local start=$SECONDS
  say "postgresql server: installing Debian's postgresql-15"
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    || die "apt-get could not install postgresql-15"
  say "postgresql server: installed in $((SECONDS - start))s"
}

# Links a cached binary into .tools/bin. A hard link, not a symlink: the CLI
# looks for its bundled plugins, and the language host for its runner, beside
# their own paths.
link_tool() {
  ln -f "$1" "$tools/" 2>/dev/null || cp -f "$1" "$tools/"
}

start=$SECONDS
venv
postgres_server
cli=github.com/pulumi/pulumi
go_build pulumi "$PULUMI_CLI_VERSION" "$cli/pkg/v3/cmd/pulumi" \
  "-X $cli/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION" \
  "$cli/pkg/v3" "$cli/sdk/v3"
link_tool "$cache/pulumi/v$PULUMI_CLI_VERSION/pulumi"
go_build pulumi-language-python "$PULUMI_LANGUAGE_PYTHON_VERSION" "$cli/sdk/v3/python/cmd/pulumi-language-python" \
  "-X $cli/sdk/v3/go/common/version.Version=v$PULUMI_LANGUAGE_PYTHON_VERSION" \
  "$cli/sdk/v3"
link_tool "$cache/pulumi-language-python/v$PULUMI_LANGUAGE_PYTHON_VERSION/pulumi-language-python"
sdk=$(sdk_module_dir)
install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$sdk/python/dist/pulumi-resource-pulumi-python" "$tools/"
say "python SDK runner and dynamic-provider plugin v$(pinned pulumi): installed"
kubernetes_provider
link_tool "$cache/pulumi-resource-kubernetes/v$(pinned pulumi-kubernetes)/pulumi-resource-kubernetes"
for component in kube-apiserver kube-controller-manager; do
  MODULE_DIR=kubernetes PREPARE=replace_kubernetes_staging go_build "$component" "$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/$component" "" k8s.io/kubernetes
  link_tool "$cache/$component/v$KUBERNETES_VERSION/$component"
done
go_build etcd "$ETCD_VERSION" . "" go.etcd.io/etcd/server/v3
link_tool "$cache/etcd/v$ETCD_VERSION/etcd"
say "done in $((SECONDS - start))s (binaries cached in $cache)"
