#!/usr/bin/env bash
# The cluster's pod network: Debian's bridge plugin with kube-ipam as its ipam, on the seed's network
# (10.188.0.0/16, range 10.188.0.10-10.188.0.200, gateway 10.188.0.1), state in the cluster's etcd.
# It is what an operator puts into deploy/configmap.yaml; the DaemonSet installs it on the node.
set -euo pipefail
. "$(dirname "$0")/settings.sh"
cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "k8snetwork",
  "type": "bridge",
  "bridge": "$BRIDGE",
  "isGateway": true,
  "ipMasq": false,
  "ipam": {
    "type": "kube-ipam",
    "kubeConfig": "/etc/kube-ipam/kube-ipam.kubeconfig",
    "etcdConfig": {
      "etcdURL": "https://127.0.0.1:$ETCD_PORT",
      "etcdCertFile": "/etc/kube-ipam/etcd/tls.crt",
      "etcdKeyFile": "/etc/kube-ipam/etcd/tls.key",
      "etcdTrustedCAFileFile": "/etc/kube-ipam/etcd/ca.crt"
    },
    "subnet": "$POD_SUBNET",
    "rangeStart": "$RANGE_START",
    "rangeEnd": "$RANGE_END",
    "gateway": "$NODE_IP",
    "routes": [{ "dst": "$POD_SUBNET" }, { "dst": "$SERVICE_CIDR" }],
    "logFile": "/var/log/kube-ipam.log",
    "logLevel": "info"
  }
}
EOF
