#!/usr/bin/env bash
# `npm run demo`: kube-ipam on the embedded store, driven through the real CNI interface the way a
# container runtime drives it (CNI_* environment, network config on stdin, result on stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
npm run --silent build >/dev/null
bin=$PWD/dist/kube-ipam
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/demo.conf" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "demo-net",
  "type": "macvlan",
  "master": "eth1",
  "ipam": {
    "type": "kube-ipam",
    "ranges": [
      [{ "subnet": "10.188.0.0/16", "rangeStart": "10.188.0.10", "rangeEnd": "10.188.0.200", "gateway": "10.188.0.1" }],
      [{ "subnet": "fd00:188::/64", "rangeStart": "fd00:188::10", "rangeEnd": "fd00:188::ffff" }]
    ],
    "exclude": ["10.188.0.11"],
    "routes": [{ "dst": "0.0.0.0/0" }],
    "dataDir": "$work/data",
    "logFile": "$work/kube-ipam.log"
  }
}
CONF

cni() { # cni COMMAND CONTAINER POD
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin \
    CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$3" "$bin" <"$work/demo.conf"
}

echo "== network config ($work/demo.conf): dual-stack, 10.188.0.11 excluded"
echo
pods=(web-0 web-1 db-0 cache-0)
for i in "${!pods[@]}"; do
  echo "== ADD ${pods[$i]} (container c$i)"
  cni ADD "c$i" "${pods[$i]}"
  echo
done
echo "== kube-ipam ls --conf demo.conf"
"$bin" ls --conf "$work/demo.conf"
echo
echo "== kube-ipam usage --conf demo.conf"
"$bin" usage --conf "$work/demo.conf"
echo
echo "== ADD c1 again (a runtime retry): the same addresses"
cni ADD c1 web-1
echo
for i in "${!pods[@]}"; do cni DEL "c$i" "${pods[$i]}"; done
echo "== after DEL of every pod"
"$bin" ls --conf "$work/demo.conf"
echo
echo "== the log ($work/kube-ipam.log), last line"
tail -n 1 "$work/kube-ipam.log"
