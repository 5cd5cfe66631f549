#!/usr/bin/env bash
# Builds dist/kube-ipam (`npm run build`). The build id is the package version and a hash of what the
# binary is made of (sources, package.json, lockfile): the same sources give the same id, any change
# another, and the agent serves only plugins of its own build. KUBE_IPAM_BUILD overrides it (tests build a
# second binary that differs in nothing else); OUT the output path. FAILPOINTS=1 builds the test binary with
# failpoints compiled in (src/lib/failpoint.ts); its build id says so, and a release agent never serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
hash=$( (find src -type f | LC_ALL=C sort | xargs cat; cat package.json package-lock.json) | sha256sum | cut -c1-12)
build=${KUBE_IPAM_BUILD:-"$version+$hash"}
failpoints=false
if [ "${FAILPOINTS:-}" = 1 ]; then failpoints=true; build="$build.failpoints"; fi
exec node_modules/.bin/bun build src/main.ts --compile --minify --bytecode --splitting --format=esm \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-jit-policy=10 \
  --define "KUBE_IPAM_BUILD=\"$build\"" --define "KUBE_IPAM_FAILPOINTS=$failpoints" --outfile "${OUT:-dist/kube-ipam}" >/dev/null
