#!/usr/bin/env bash
# Builds the third-party programs the real-cluster tests run, from the Go module proxy, into
# $KUBE_IPAM_TEST_CACHE (default /var/cache/kube-ipam-test), keyed by version. A finished build is
# reused; an interrupted one is thrown away (each version's bin/ appears whole, by rename).
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl  k8s.io/kubernetes
#   crictl                                                                     sigs.k8s.io/cri-tools
# Prints the bin directory. These are test infrastructure: nothing here ships in the product.
set -euo pipefail

. "$(dirname "$0")/settings.sh"
cache=$CACHE
bin="$cache/k8s-v$K8S_VERSION-cri-tools-v$CRI_TOOLS_VERSION/bin"
programs=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl crictl)

complete() { for p in "${programs[@]}"; do [ -x "$bin/$p" ] || return 1; done; }
if complete; then echo "$bin"; exit 0; fi

. "$(dirname "$0")/go_build.sh"
go_build_workspace "build-components: go is needed to build Kubernetes' programs"

# k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...) at ./staging with replace
# directives that only apply inside its own repository; a module that builds it pins each one to the
# release's v0 tag instead, read from the release's own go.mod so the list never drifts.
mkdir -p "$work/k8s" "$work/out"
cd "$work/k8s"
gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")
v0="v0.${K8S_VERSION#1.}"
{
  echo "module kube-ipam-test/k8s-build"
  echo "go $(sed -n 's/^go //p' "$gomod")"
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  echo "replace ("
  for m in $staging; do echo "  $m => $m $v0"; done
  echo ")"
} > go.mod
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ldflags+=" -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
# -p 2: the machines have two cores; more parallel links only add memory.
go build -p 2 -trimpath -ldflags "$ldflags" -o "$work/out/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl

mkdir -p "$work/cri"
cd "$work/cri"
cat > go.mod <<MOD
module kube-ipam-test/cri-tools-build
go 1.24.0
require sigs.k8s.io/cri-tools v$CRI_TOOLS_VERSION
MOD
go build -p 2 -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRI_TOOLS_VERSION" \
  -o "$work/out/" sigs.k8s.io/cri-tools/cmd/crictl

mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$work/out" "$bin"
echo "build-components: built ${programs[*]} in $(( $(date +%s) - started )) s" >&2
echo "$bin"
