#!/usr/bin/env bash
# Builds whereabouts (the CNI IPAM binary, Kubernetes datastore) from the Go module proxy into
# $KUBE_IPAM_TEST_CACHE (default /var/cache/kube-ipam-test)/whereabouts-v$WHEREABOUTS_VERSION/, for the
# benchmark's Kubernetes peer (bench/peers/whereabouts_k8s.ts):
#   bin/whereabouts   github.com/k8snetworkplumbingwg/whereabouts/cmd (the CNI plugin's main package)
#   crds/*.yaml       the module's doc/crds: ippools, overlappingrangeipreservations, nodeslicepools
# A finished build is reused; an interrupted one is thrown away (the version's directory appears whole, by
# rename). Prints that directory. Test infrastructure: nothing of whereabouts is copied into the repository.
set -euo pipefail

. "$(dirname "$0")/../cluster/settings.sh"
WHEREABOUTS_VERSION=0.9.2
module=github.com/k8snetworkplumbingwg/whereabouts
cache=$CACHE
dir="$cache/whereabouts-v$WHEREABOUTS_VERSION"
crds=(whereabouts.cni.cncf.io_ippools.yaml whereabouts.cni.cncf.io_overlappingrangeipreservations.yaml
  whereabouts.cni.cncf.io_nodeslicepools.yaml)

complete() {
  [ -x "$dir/bin/whereabouts" ] || return 1
  for c in "${crds[@]}"; do [ -s "$dir/crds/$c" ] || return 1; done
}
if complete; then echo "$dir"; exit 0; fi

. "$(dirname "$0")/../cluster/go_build.sh"
go_build_workspace "build-whereabouts: go is needed to build whereabouts"

mkdir -p "$work/wa" "$work/out/bin" "$work/out/crds"
cd "$work/wa"
info=$(go mod download -json "$module@v$WHEREABOUTS_VERSION")
field() { echo "$info" | sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p"; }
gomod=$(field GoMod)
src=$(field Dir)
[ -f "$gomod" ] && [ -d "$src" ] || { echo "build-whereabouts: go mod download gave no module: $info" >&2; exit 1; }
# A module that builds another one gets none of its replace directives: carry them over (single-line form;
# v0.9.2 has one, for gogo/protobuf), with its go directive, and its go.sum so every hash is checked against
# the release's own.
{
  echo "module kube-ipam-test/whereabouts-build"
  echo "go $(sed -n 's/^go //p' "$gomod")"
  echo "require $module v$WHEREABOUTS_VERSION"
  sed -n 's/^replace \(.* => .*\)$/replace \1/p' "$gomod"
} > go.mod
cp "$src/go.sum" go.sum
chmod u+w go.sum
v="$module/pkg/version"
go build -p 2 -trimpath \
  -ldflags "-s -w -X $v.Version=v$WHEREABOUTS_VERSION -X $v.ReleaseStatus=released -X $v.GitTreeState=clean" \
  -o "$work/out/bin/whereabouts" "$module/cmd"
for c in "${crds[@]}"; do
  [ -s "$src/doc/crds/$c" ] || { echo "build-whereabouts: $module@v$WHEREABOUTS_VERSION has no doc/crds/$c" >&2; exit 1; }
  cp "$src/doc/crds/$c" "$work/out/crds/$c"
done
chmod -R u+w,go+rX "$work/out"

rm -rf "$dir"
mv "$work/out" "$dir"
echo "build-whereabouts: built whereabouts v$WHEREABOUTS_VERSION in $(( $(date +%s) - started )) s" >&2
echo "$dir"
