#!/usr/bin/env bash
# Builds the etcd that the test kube-apiservers store in (test/support/kube_apiserver.ts), from the Go module
# proxy, into $KUBE_IPAM_TEST_CACHE (default /var/cache/kube-ipam-test), keyed by version: Kubernetes 1.34 supports
# etcd 3.5 and 3.6 only, and on Debian 12's etcd 3.4.23 its watch cache cannot serve consistent lists (no watch
# progress requests before 3.4.31), so every consistent list would read etcd. Debian's etcd stays the one
# kube-ipam's own etcd store is tested on. A finished build is reused; an interrupted one is thrown away (bin/
# appears whole, by rename). Prints the bin directory. Test infrastructure: nothing here ships in the product.
set -euo pipefail

. "$(dirname "$0")/settings.sh"
cache=$CACHE
bin="$cache/etcd-v$ETCD_K8S_VERSION/bin"

if [ -x "$bin/etcd" ]; then echo "$bin"; exit 0; fi

. "$(dirname "$0")/go_build.sh"
go_build_workspace "build-etcd: go is needed to build etcd"

# etcd's main package is in the root module go.etcd.io/etcd/v3, which the proxy does not serve for every
# release (and which points its sibling modules at ../ with replace directives): a module of its own with the
# same main (etcdmain.Main) builds it instead, pinning go.etcd.io/etcd/* and raft to the versions the release's
# server module names, read from its go.mod so the list never drifts.
mkdir -p "$work/etcd" "$work/out"
cd "$work/etcd"
gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@v$ETCD_K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
pins=$(sed -n 's#^[[:space:]]*\(go\.etcd\.io/[^ ]*\) \(v[^ ]*\)$#\1 \2#p' "$gomod")
{
  echo "module kube-ipam-test/etcd-build"
  echo "go $(sed -n 's/^go //p' "$gomod")"
  echo "require ("
  echo "  go.etcd.io/etcd/server/v3 v$ETCD_K8S_VERSION"
  while read -r m v; do echo "  $m $v"; done <<< "$pins"
  echo ")"
} > go.mod
cat > main.go <<'GO'
// etcd, as go.etcd.io/etcd/v3's main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
# -p 2: the machines have two cores.
go build -p 2 -trimpath -ldflags "-s -w" -o "$work/out/etcd" .

version=$("$work/out/etcd" --version | sed -n 's/^etcd Version: //p')
if [ "$version" != "$ETCD_K8S_VERSION" ]; then
  echo "build-etcd: the built etcd says version \"$version\", not $ETCD_K8S_VERSION" >&2
  exit 1
fi

mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$work/out" "$bin"
echo "build-etcd: built etcd $ETCD_K8S_VERSION in $(( $(date +%s) - started )) s" >&2
echo "$bin"
