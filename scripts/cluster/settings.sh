# The cluster's fixed facts, shared by scripts/cluster.sh and its helpers (and read by test/support/cluster.ts).
# Every path and name is the cluster's own, so that `down` can remove exactly what `up` made.
DIR=${KUBE_IPAM_CLUSTER_DIR:-/var/lib/kube-ipam-cluster}   # PKI, kubeconfigs, etcd data, containerd root, logs
RUN=/run/kube-ipam-cluster                                 # pid files, containerd's state and socket
CACHE=${KUBE_IPAM_TEST_CACHE:-/var/cache/kube-ipam-test}   # built programs and images (kept across down)
# The Kubernetes release the cluster runs: 1.34 still runs on cgroup v1 and with containerd 1.6 (Debian 12's).
K8S_VERSION=1.34.4
CRI_TOOLS_VERSION=1.34.0
# The etcd the API servers store in (scripts/cluster/build-etcd.sh): Kubernetes 1.34 supports etcd 3.5 and 3.6 only (kubeadm 1.34 runs 3.6).
ETCD_K8S_VERSION=3.6.17
CONTAINERD_SOCKET=$RUN/containerd/containerd.sock
NODE_NAME=kube-ipam-node
# The seed's network: the node's address is the pods' gateway, on the bridge the pods attach to.
BRIDGE=kipam0
NODE_IP=10.188.0.1
POD_SUBNET=10.188.0.0/16
RANGE_START=10.188.0.10
RANGE_END=10.188.0.200
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
# Ports away from the defaults of an etcd or API server the machine may run for something else.
ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=6443
CONTAINERD_METRICS_PORT=10299
CHAIN=KUBE-IPAM-CLUSTER
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
WORKLOAD_IMAGE=localhost/kube-ipam-test/httpd:1
