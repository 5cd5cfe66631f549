#!/usr/bin/env bash
# The test command (`npm test`): installs what the tests need when missing, type-checks, builds
# dist/kube-ipam (and dist/kube-ipam-core) and runs every test against it. Extra arguments go to `bun test` (a path filter).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The forwarder (src/forwarder/) is C, linked statically.
command -v "${CC:-cc}" >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
# test/image/: the image built with podman (runc as its runtime) on a Debian base made by mmdebstrap, the
# DaemonSet's and the controller's containers run by podman, and podman's bridge networks on the plugin.
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
has podman || missing+=(podman)
has runc || missing+=(runc)
has mmdebstrap || missing+=(mmdebstrap)
has newuidmap || missing+=(uidmap)
has iptables || missing+=(iptables)
# test/chaos/: the chaos bed's partitions and lossy links are nftables rules in its hosts' namespaces.
has nft || missing+=(nftables)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# test/cluster/: a real single-node Kubernetes (scripts/cluster.sh): Debian's containerd under the kubelet,
# busybox for the workload image, curl to wait for etcd; Kubernetes itself is built with Go (below).
has containerd || missing+=(containerd)
[ -x /bin/busybox ] || missing+=(busybox-static)
has curl || missing+=(curl)
has nsenter || missing+=(util-linux)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The tests need these Debian packages: ${missing[*]} (run as root to install them automatically)" >&2
    exit 1
  fi
  echo "Installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
# kube-apiserver, kubelet, ... and crictl from the Go module proxy, once per version (about 6 minutes cold
# on 2 cores, then cached under /var/cache/kube-ipam-test).
command -v go >/dev/null 2>&1 || { echo "The tests need Go to build Kubernetes' programs (test/cluster/, test/support/kube_apiserver.ts)" >&2; exit 1; }
bash scripts/cluster/build-components.sh >/dev/null
# The test kube-apiservers' etcd 3.6 (Debian's 3.4 stays kube-ipam's own etcd store's), the same way (under a minute cold).
bash scripts/cluster/build-etcd.sh >/dev/null
# test/cluster/ brings the cluster up and down itself; one left running holds the node's kube-ipam ports
# (9153, 9154), /run/kube-ipam and /opt/cni/bin that the image tests use as a node's.
if [ "$(bash scripts/cluster.sh status | head -1)" != down ]; then
  echo "A cluster of scripts/cluster.sh is up: run scripts/cluster.sh down first" >&2
  exit 1
fi
node_modules/.bin/tsc --noEmit -p .
npm run --silent build

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
node_modules/.bin/bun test --timeout 60000 "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
