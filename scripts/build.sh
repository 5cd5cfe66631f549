#!/usr/bin/env bash
# Builds the two executables the product ships as (`npm run build`; src/forwarder/layout.ts): dist/kube-ipam,
# the native forwarder the runtime runs, and dist/kube-ipam-core next to it, the product compiled with Bun.
# Both carry one build id. The build id is the package version and a hash of what the
# binary is made of (sources, package.json, lockfile): the same sources give the same id, any change
# another, and the agent serves only plugins of its own build. KUBE_IPAM_BUILD overrides it (tests build a
# second binary that differs in nothing else); OUT the forwarder's path (the core goes next to it). FAILPOINTS=1 builds the test binary with
# failpoints compiled in (src/lib/failpoint.ts); its build id says so, and a release agent never serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
hash=$( (find src -type f | LC_ALL=C sort | xargs cat; cat package.json package-lock.json) | sha256sum | cut -c1-12)
build=${KUBE_IPAM_BUILD:-"$version+$hash"}
failpoints=false
if [ "${FAILPOINTS:-}" = 1 ]; then failpoints=true; build="$build.failpoints"; fi
out=${OUT:-dist/kube-ipam}
core=$(dirname "$out")/$(node -p 'require("fs").readFileSync("src/forwarder/layout.ts","utf8").match(/CORE_EXECUTABLE = "([^"]+)"/)[1]')
mkdir -p "$(dirname "$out")"

# The forwarder: static, so that it runs on any node whatever its C library (it is copied to the host).
generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
node_modules/.bin/bun scripts/forwarder_header.ts "$build" >"$generated/forwarder_config.h"
cflags=(-std=c11 -O2 -Wall -Wextra -Werror -static -s -I"$generated")
if [ "$failpoints" = true ]; then cflags+=(-DKUBE_IPAM_FAILPOINTS); fi
"${CC:-cc}" "${cflags[@]}" -o "$out" src/forwarder/forwarder.c src/forwarder/json.c

node_modules/.bin/bun build src/main.ts --compile --minify --bytecode --splitting --format=esm \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-jit-policy=10 \
  --define "KUBE_IPAM_BUILD=\"$build\"" --define "KUBE_IPAM_FAILPOINTS=$failpoints" --outfile "$core" >/dev/null
