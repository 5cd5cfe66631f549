# Sourced by the scripts that build test components from the Go module proxy (build-components.sh,
# build-etcd.sh, ../peers/build-whereabouts.sh), after settings.sh.
#   go_build_workspace "MESSAGE WHEN GO IS MISSING"
# One module and build cache for all of them, beside the binaries (a version bump rebuilds only what changed);
# static and without cgo, as upstream releases them. Sets $work (a scratch directory, removed on exit) and
# $started.
go_build_workspace() {
  command -v go >/dev/null 2>&1 || { echo "$1" >&2; exit 1; }
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  started=$(date +%s)
}
