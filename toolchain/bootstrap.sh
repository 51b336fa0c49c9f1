#!/usr/bin/env bash
# Sets up what the project runs on, offline but for the package registries.
#
#   bootstrap.sh [core]        what every stack on the local target needs:
#     - the Python virtualenv (.venv) from requirements.txt;
#     - PostgreSQL 15's server binaries (Debian's), when missing;
#     - the Pulumi CLI, built from its Go module;
#     - the Python language host, built from its source release against the CLI's
#       pkg/sdk modules, and the Python SDK's own runner and dynamic-provider plugin;
#     - the provider plugins the program uses (vault, tls, random), each found
#       installed at its pinned version or built from its source release;
#   bootstrap.sh kubernetes    core, and the Kubernetes provider and the tests'
#                              Kubernetes control plane (kube-apiserver,
#                              kube-controller-manager, etcd);
#   bootstrap.sh cluster       kubernetes, and what the multi-node test cluster adds
#                              (toolchain/cluster/, docs/cluster.md): kube-scheduler and
#                              kubelet (built with the control plane), kube-proxy, the CNI plugins,
#                              CoreDNS and local-path-provisioner (go install from their modules),
#                              Debian's containerd, runc and iptables, and the docker target's
#                              engine and image contexts (the cluster's images are built there);
#   bootstrap.sh all           cluster, and the docker target's provider;
#   bootstrap.sh stack NAME    what stack NAME needs (cluster or docker as its target says).
#
# Binaries are cached per user, keyed by version, so that every checkout reuses
# them; .tools/bin (the folder `make env` puts on PATH) holds hard links to them.
# A warm run builds nothing and takes seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=versions.env
source toolchain/versions.env

cache=${PULUMI_DBCREDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-dbcreds}
tools="$root/.tools/bin"
provider_src=$(cd "$root" && realpath -m "${PULUMI_DBCREDS_PROVIDER_SRC:-../shared/provider-src}")
mkdir -p "$cache" "$tools"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
# Modules come from the module proxy only: never fall back to fetching a repository directly.
GOPROXY=$(go env GOPROXY | sed 's/,direct$//; s/|direct$//')
export GOPROXY

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Go builds take both cores and gigabytes of memory: two at once (two bootstraps, or a build run by
# hand) starve each other. Every build here runs under this lock, waiting for its turn; a build by
# hand takes it the same way: flock "$cache/go-build.lock" go build ...
build_lock="$cache/go-build.lock"
locked() {
  flock "$build_lock" "$@"
}

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
  trap 'rm -rf "$work"; trap - RETURN' RETURN
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
  (cd "$work" && locked go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") \
    || die "$name: go build of $pkg at v$version failed"
  mv "$out.tmp" "$out"
  say "$name v$version: built in $((SECONDS - start))s"
}

# go_install NAME VERSION LDFLAGS PACKAGE...: `go install PACKAGE@vVERSION` for main packages of one
# module, built as its own go.mod and go.sum say (no wrapper module), static, into
# $cache/NAME/vVERSION/ (skipped when every binary is there).
go_install() {
  local name=$1 version=$2 ldflags=$3
  shift 3
  local dir="$cache/$name/v$version" pkg missing=() args=()
  for pkg in "$@"; do
    [ -x "$dir/${pkg##*/}" ] || missing+=("${pkg##*/}")
    args+=("$pkg@v$version")
  done
  if [ ${#missing[@]} = 0 ]; then
    say "$name v$version: cached"
    return
  fi
  local start=$SECONDS work
  work=$(mktemp -d)
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  say "$name v$version: go install of ${missing[*]} (minutes on 2 cores, cold)"
  GOBIN=$work CGO_ENABLED=0 GOFLAGS=-buildvcs=false locked go install -trimpath -ldflags "-s -w $ldflags" "${args[@]}" \
    || die "$name: go install of ${args[*]} failed"
  mkdir -p "$dir"
  for pkg in "$@"; do
    mv "$work/${pkg##*/}" "$dir/${pkg##*/}"
  done
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

# unpack ARCHIVE: a fresh copy of a source release in the cache's scratch folder
# (never in the work tree), its top folder stripped; prints the folder.
unpack() {
  local archive=$1 dir
  dir="$cache/src/$(basename "$archive" .tar.gz)"
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$archive" -C "$dir" --strip-components=1 || die "cannot unpack $archive"
  chmod -R u+w "$dir"
  echo "$dir"
}

# source_release NAME-VERSION: the archive of a source release in the provider
# source folder, checked against its pinned sha256 (versions.env); empty if absent.
source_release() {
  local archive="$provider_src/$1.tar.gz" var want
  [ -f "$archive" ] || return 0
  var="SHA256_$(echo "$1" | tr 'a-z.-' 'A-Z__')"
  want=${!var:-}
  [ -n "$want" ] || die "versions.env pins no sha256 for $1 ($var)"
  [ "$(sha256sum "$archive" | cut -d' ' -f1)" = "$want" ] || die "$archive does not match its sha256 in versions.env"
  echo "$archive"
}

# The Python language host: its own Go module since v3.80, which pulumi never
# tags and the proxy does not serve, so it is built from its source release,
# against pkg/v3 and sdk/v3 at the CLI's version (the release's go.mod replaces
# them with folders of pulumi's repository that the archive does not carry).
language_host() {
  local version=$PULUMI_LANGUAGE_PYTHON_VERSION name=pulumi-language-python cli=github.com/pulumi/pulumi
  local out="$cache/$name/v$version-cli$PULUMI_CLI_VERSION/$name"
  if [ ! -x "$out" ]; then
    local archive start=$SECONDS src
    archive=$(source_release "$name-$version")
    [ -n "$archive" ] || die "$name v$version: no source release $name-$version.tar.gz in $provider_src (set PULUMI_DBCREDS_PROVIDER_SRC)"
    say "$name v$version: building from $archive against the CLI's modules (about 2 minutes)"
    src=$(unpack "$archive")
    (cd "$src/sdk/python/cmd/$name" \
      && go mod edit -dropreplace "$cli/pkg/v3" -dropreplace "$cli/sdk/v3" \
           -require "$cli/pkg/v3@v$PULUMI_CLI_VERSION" -require "$cli/sdk/v3@v$PULUMI_CLI_VERSION" \
      && go mod tidy >/dev/null 2>"$src/tidy.log" \
      && mkdir -p "$(dirname "$out")" \
      && locked go build -trimpath -ldflags "-s -w -X $cli/sdk/v3/go/common/version.Version=v$version" -o "$out.tmp" .) \
      || { cat "$src/tidy.log" >&2; die "$name v$version: build failed"; }
    mv "$out.tmp" "$out"
    rm -rf "$src"
    say "$name v$version: built in $((SECONDS - start))s"
  else
    say "$name v$version: cached"
  fi
  link_tool "$out"
}

# provider_plugin NAME GO_MODULE: pulumi-resource-NAME at the version its Python
# SDK is pinned to, from the first of:
#   1. installed: a plugin folder of Pulumi's (this checkout's PULUMI_HOME, then
#      ~/.pulumi), or this cache (built before);
#   2. built from its source release, pulumi-NAME-VERSION.tar.gz in
#      $PULUMI_DBCREDS_PROVIDER_SRC (default ../shared/provider-src);
#   3. neither: an error naming both, and the command a machine with internet uses.
# It is registered with the CLI under this checkout's PULUMI_HOME (`register_plugin`).
provider_plugin() {
  local name=$1 module=$2 version bin=pulumi-resource-$1
  version=$(pinned "pulumi-$name")
  local out="$cache/$bin/v$version/$bin" found
  for found in "$root/.pulumi/home/plugins/resource-$name-v$version/$bin" \
               "$HOME/.pulumi/plugins/resource-$name-v$version/$bin" "$out"; do
    if [ -x "$found" ]; then
      say "$bin v$version: installed ($found)"
      register_plugin "$name" "$version" "$found"
      return
    fi
  done
  local archive start=$SECONDS src
  archive=$(source_release "pulumi-$name-$version")
  [ -n "$archive" ] || die "$bin v$version is not installed (looked in $root/.pulumi/home/plugins, \
$HOME/.pulumi/plugins and $cache), and its source release pulumi-$name-$version.tar.gz is not in \
$provider_src (set PULUMI_DBCREDS_PROVIDER_SRC to the folder that holds it). On a machine with \
internet: pulumi plugin install resource $name $version"
  say "$bin v$version: building from $archive (about 3 minutes)"
  src=$(unpack "$archive")
  (cd "$src/provider/cmd/$bin" && VERSION=$version locked go run generate.go) || die "$bin: generate.go failed"
  mkdir -p "$(dirname "$out")"
  (cd "$src/provider" && locked go build -trimpath -ldflags "-s -w -X $module/pkg/version.Version=$version" \
      -o "$out.tmp" "./cmd/$bin") || die "$bin v$version: go build failed"
  mv "$out.tmp" "$out"
  rm -rf "$src"
  say "$bin v$version: built in $((SECONDS - start))s"
  register_plugin "$name" "$version" "$out"
}

# register_plugin NAME VERSION BINARY: `pulumi plugin install` of a resource plugin
# into this checkout's PULUMI_HOME (the one `make env` and the tests use), unless there.
register_plugin() {
  local name=$1 version=$2 binary=$3 home="$root/.pulumi/home"
  [ -x "$home/plugins/resource-$name-v$version/pulumi-resource-$name" ] && return
  PULUMI_HOME="$home" PULUMI_SKIP_UPDATE_CHECK=true "$tools/pulumi" plugin install resource "$name" "$version" \
    --file "$binary" >/dev/null || die "pulumi plugin install resource $name $version --file $binary failed"
  say "pulumi-resource-$name v$version: registered in $home"
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
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  say "$name v$version: building (about 8 minutes and 4.5 GB of memory on 2 cores)"
  (cd "$work" && go mod edit -replace "$module/sdk/v4=$module/sdk/v4@$PULUMI_KUBERNETES_GO_SDK") \
    || die "$name: cannot replace sdk/v4"
  (cd "$work/cmd/$name" && VERSION=$version locked go run generate.go) || die "$name: generate.go failed"
  mkdir -p "$(dirname "$out")"
  (cd "$work" && locked go build -trimpath -ldflags "-s -w -X $module/provider/v4/pkg/version.Version=$version" \
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

core() {
  venv
  postgres_server
  local cli=github.com/pulumi/pulumi
  go_build pulumi "$PULUMI_CLI_VERSION" "$cli/pkg/v3/cmd/pulumi" \
    "-X $cli/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION" \
    "$cli/pkg/v3" "$cli/sdk/v3"
  link_tool "$cache/pulumi/v$PULUMI_CLI_VERSION/pulumi"
  language_host
  local sdk
  sdk=$(sdk_module_dir)
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$sdk/python/dist/pulumi-resource-pulumi-python" "$tools/"
  say "python SDK runner and dynamic-provider plugin v$(pinned pulumi): installed"
  provider_plugin vault github.com/pulumi/pulumi-vault/provider/v7
  provider_plugin tls github.com/pulumi/pulumi-tls/provider/v5
  provider_plugin random github.com/pulumi/pulumi-random/provider/v4
}

kubernetes() {
  kubernetes_provider
  register_plugin kubernetes "$(pinned pulumi-kubernetes)" \
    "$cache/pulumi-resource-kubernetes/v$(pinned pulumi-kubernetes)/pulumi-resource-kubernetes"
  local component
  for component in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    MODULE_DIR=kubernetes PREPARE=replace_kubernetes_staging go_build "$component" "$KUBERNETES_VERSION" \
      "k8s.io/kubernetes/cmd/$component" "-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION" \
      k8s.io/kubernetes
    link_tool "$cache/$component/v$KUBERNETES_VERSION/$component"
  done
  go_build etcd "$ETCD_VERSION" . "" go.etcd.io/etcd/server/v3
  link_tool "$cache/etcd/v$ETCD_VERSION/etcd"
}

# Debian's Docker engine (dockerd 20.10, containerd, runc) and debootstrap when missing, and the
# images' build contexts (components/docker/images.py: the OpenBao binary, and a Debian root
# filesystem with PostgreSQL 15, about 1.5 minutes cold).
docker_engine_and_contexts() {
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    [ "$(id -u)" = 0 ] || die "the docker target needs dockerd and debootstrap: install Debian's docker.io and debootstrap"
    local start=$SECONDS
    say "docker engine: installing Debian's docker.io and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null \
      || die "apt-get could not install docker.io and debootstrap"
    say "docker engine: installed in $((SECONDS - start))s"
  fi
  say "docker engine: $(dockerd --version)"
  local start=$SECONDS
  .venv/bin/python -m components.docker.images >/dev/null || die "the docker target's image contexts could not be made"
  say "docker image contexts: ready in $((SECONDS - start))s"
}

docker_provider() {
  provider_plugin docker github.com/pulumi/pulumi-docker/provider/v4
}

# The docker target: the engine and contexts, and pulumi-docker's provider.
docker_target() {
  docker_engine_and_contexts
  docker_provider
}

# The multi-node cluster (toolchain/cluster/): kube-proxy (built as the control plane is), the
# CNI plugins of its pod network, CoreDNS and local-path-provisioner (their images are built from these
# binaries), and Debian's containerd, runc and iptables when missing (gcc builds the pause binary;
# toolchain/cluster/images.py builds the images on a Docker engine from the docker target's contexts).
cluster() {
  kubernetes
  MODULE_DIR=kubernetes PREPARE=replace_kubernetes_staging go_build kube-proxy "$KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kube-proxy "-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION" \
    k8s.io/kubernetes
  link_tool "$cache/kube-proxy/v$KUBERNETES_VERSION/kube-proxy"
  local cni=github.com/containernetworking/plugins/plugins
  go_install cni-plugins "$CNI_PLUGINS_VERSION" "" \
    "$cni/main/bridge" "$cni/main/loopback" "$cni/ipam/host-local" "$cni/meta/portmap"
  go_install coredns "$COREDNS_VERSION" "" github.com/coredns/coredns
  go_install local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" "-X main.VERSION=v$LOCAL_PATH_PROVISIONER_VERSION" \
    github.com/rancher/local-path-provisioner
  local missing=() tool
  for tool in containerd runc iptables; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} != 0 ]; then
    [ "$(id -u)" = 0 ] || die "the cluster needs ${missing[*]}: install Debian's containerd, runc and iptables"
    local start=$SECONDS
    say "cluster runtime: installing Debian's containerd, runc and iptables"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends containerd runc iptables >/dev/null \
      || die "apt-get could not install containerd, runc and iptables"
    say "cluster runtime: installed in $((SECONDS - start))s"
  fi
  say "cluster runtime: $(containerd --version | cut -d' ' -f1,3), $(iptables --version)"
  docker_engine_and_contexts
}

# The stack's target, from its stack file (its default unless it says otherwise). The stack files'
# reader needs yaml: the virtualenv's python runs it (core made the virtualenv).
stack_target() {
  local target
  target=$(.venv/bin/python -m toolchain.stack_file "$1" --setting target 2>&1) || die "$target"
  echo "$target"
}

start=$SECONDS
case "${1:-core}" in
  core) core ;;
  kubernetes) core; kubernetes ;;
  cluster) core; cluster ;;
  all) core; cluster; docker_provider ;;  # cluster made the engine and contexts
  stack)
    [ -n "${2:-}" ] || die "usage: bootstrap.sh stack NAME"
    core
    target=$(stack_target "$2")
    case "$target" in
      # kubectl (the port-forward to Vault, make down) and the images the cluster imports.
      kubernetes) cluster ;;
      docker) docker_target ;;
    esac ;;
  *) die "usage: bootstrap.sh [core | kubernetes | cluster | all | stack NAME]" ;;
esac
say "done in $((SECONDS - start))s (binaries cached in $cache)"
