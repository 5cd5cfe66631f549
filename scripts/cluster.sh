#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for the end-to-end tests and for trying kube-ipam by hand:
#
#   scripts/cluster.sh up      # (as root) etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet;
#                              # then kube-ipam installed from deploy/ with kubectl apply, as production does
#   eval "$(scripts/cluster.sh env)"; kubectl get nodes
#   scripts/cluster.sh status  # what runs, and whether anything of the cluster is left on the machine
#   scripts/cluster.sh down    # stops everything and removes every trace: processes, mounts, interfaces,
#                              # network namespaces, iptables rules, containerd's state, files
#
# The programs are built from the Go module proxy (scripts/cluster/build-components.sh, cached under
# /var/cache/kube-ipam-test); containerd and runc are Debian's; the pause image and every other image are
# built here with podman and imported into containerd, so no registry is needed. docs/cluster.md has the
# layout, the addresses, and why each choice was made.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/settings.sh
. "$repo/scripts/cluster/settings.sh"

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it starts a kubelet and containerd, and makes interfaces)"; }

pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

running() { pid_alive kube-apiserver && pid_alive kubelet; }

kc() { "$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" "$@"; }

# start NAME ARGV...: a daemon in its own session, its output in $DIR/log/NAME.log, its pid in $RUN.
start() {
  local name=$1; shift
  setsid "$@" >>"$DIR/log/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds; on time out shows the last log lines.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "timed out after ${seconds}s waiting for $what"
      for f in "$DIR"/log/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
      exit 1
    fi
    sleep 0.5
  done
}

cmd_up() {
  need_root
  if running; then log "already up (kubeconfig $DIR/admin.kubeconfig)"; exit 0; fi
  if [ -e "$DIR" ] || [ -e "$RUN" ]; then
    log "found what an earlier cluster left: cleaning it up first"
    cmd_down
  fi
  local started; started=$(date +%s)
  BIN=$("$repo/scripts/cluster/build-components.sh")
  local missing=()
  for t in containerd containerd-shim-runc-v2 ctr runc etcd openssl iptables podman gcc; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(/usr/lib/cni/bridge)
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (npm test installs them: see scripts/test.sh)"
  [ -x "$repo/dist/kube-ipam" ] && [ -x "$repo/dist/kube-ipam-core" ] || die "dist/kube-ipam is not built: npm run build"

  mkdir -p "$DIR/log" "$DIR/pki" "$RUN"
  echo "$BIN" > "$DIR/bin-dir"
  cat /proc/sys/net/ipv4/ip_forward > "$DIR/ip_forward.before"

  "$repo/scripts/cluster/pki.sh" "$DIR/pki" "$NODE_NAME" "$NODE_IP" "$KUBERNETES_SERVICE_IP"
  write_kubeconfigs
  network_up

  log "etcd"
  start etcd etcd --name "$NODE_NAME" --data-dir "$DIR/etcd" \
    --listen-client-urls "https://127.0.0.1:$ETCD_PORT" --advertise-client-urls "https://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:$ETCD_PEER_PORT" \
    --client-cert-auth --trusted-ca-file "$DIR/pki/ca.crt" \
    --cert-file "$DIR/pki/etcd-server.crt" --key-file "$DIR/pki/etcd-server.key"
  wait_for etcd 30 curl -sf --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/apiserver-etcd-client.crt" \
    --key "$DIR/pki/apiserver-etcd-client.key" "https://127.0.0.1:$ETCD_PORT/health"

  log "kube-apiserver"
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "https://127.0.0.1:$ETCD_PORT" --etcd-cafile "$DIR/pki/ca.crt" \
    --etcd-certfile "$DIR/pki/apiserver-etcd-client.crt" --etcd-keyfile "$DIR/pki/apiserver-etcd-client.key" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" \
    --kubelet-client-certificate "$DIR/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$DIR/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$DIR/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --anonymous-auth=true --v=1
  wait_for kube-apiserver 90 kc get --raw /readyz
  # The API server's own client identity toward kubelets (logs, exec, port-forward), as kubeadm grants it.
  kc create clusterrolebinding kube-apiserver-kubelet-client --clusterrole system:kubelet-api-admin \
    --user kube-apiserver-kubelet-client >/dev/null

  log "kube-controller-manager, kube-scheduler"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
    --cluster-signing-cert-file "$DIR/pki/ca.crt" --cluster-signing-key-file "$DIR/pki/ca.key" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' --v=1
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --v=1

  images_and_runtime

  log "kubelet"
  write_kubelet_config
  start_kubelet
  wait_for "node $NODE_NAME to register" 90 kc get node "$NODE_NAME"

  install_kube_ipam
  log "up in $(( $(date +%s) - started ))s: eval \"\$($0 env)\"; kubectl get pods -A -o wide"
}

start_kubelet() {
  start kubelet "$BIN/kubelet" --config "$DIR/kubelet-config.yaml" --kubeconfig "$DIR/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

write_kubeconfigs() {
  local server="https://$NODE_IP:$APISERVER_PORT"
  kubeconfig() { # FILE CERT-NAME
    cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kube-ipam-cluster
    cluster:
      server: $server
      certificate-authority: $DIR/pki/ca.crt
users:
  - name: $2
    user:
      client-certificate: $DIR/pki/$2.crt
      client-key: $DIR/pki/$2.key
contexts:
  - name: $2
    context: { cluster: kube-ipam-cluster, user: $2 }
current-context: $2
EOF
    chmod 0600 "$1"
  }
  kubeconfig "$DIR/admin.kubeconfig" admin
  kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
  kubeconfig "$DIR/scheduler.kubeconfig" scheduler
  kubeconfig "$DIR/kubelet.kubeconfig" kubelet
}

# The node's address lives on the pod bridge: the API server and the kubelet listen there, and pods and
# hostNetwork pods reach it without any route off the machine. Pods get no default route (the network
# config's routes), forwarding off the bridge is dropped, and the one Service the node needs (kubernetes,
# which the in-cluster clients of the DaemonSet and the controller use) is translated as kube-proxy would.
network_up() {
  log "bridge $BRIDGE ($NODE_IP), iptables chain $CHAIN"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/16" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for t in filter nat; do iptables -t "$t" -N "$CHAIN"; done
  iptables -t nat -A "$CHAIN" -d "$KUBERNETES_SERVICE_IP" -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:$APISERVER_PORT"
  iptables -t nat -I OUTPUT -j "$CHAIN"
  iptables -t nat -I PREROUTING -j "$CHAIN"
  iptables -t filter -A "$CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -t filter -A "$CHAIN" -i "$BRIDGE" -j DROP
  iptables -t filter -A "$CHAIN" -o "$BRIDGE" -j DROP
  iptables -t filter -I FORWARD -j "$CHAIN"
  # Debian's plugins where containerd looks for them; kube-ipam's own two arrive from its DaemonSet.
  mkdir -p /opt/cni/bin
  : > "$DIR/cni-links"
  for p in bridge loopback host-local portmap; do
    if [ ! -e "/opt/cni/bin/$p" ]; then ln -s "/usr/lib/cni/$p" "/opt/cni/bin/$p"; echo "/opt/cni/bin/$p" >> "$DIR/cni-links"; fi
  done
}

images_and_runtime() {
  log "containerd"
  mkdir -p "$DIR/containerd" "$RUN/containerd"
  cat > "$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCKET"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = $(has_cap_sys_resource && echo false || echo true)
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc || echo /usr/sbin/runc)"
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
# The bench reads each sandbox's network setup time here (bench/k8s.ts).
[metrics]
  address = "127.0.0.1:$CONTAINERD_METRICS_PORT"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
EOF
  start containerd containerd --config "$DIR/containerd/config.toml"
  wait_for containerd 30 ctr --address "$CONTAINERD_SOCKET" version
  log "images: pause, kube-ipam, the test workload (built with podman, imported into containerd)"
  "$repo/node_modules/.bin/bun" "$repo/scripts/cluster/images.ts" "$CONTAINERD_SOCKET" "$DIR/images" \
    "$CACHE/go/mod/k8s.io/kubernetes@v$K8S_VERSION/build/pause/linux/pause.c" "$PAUSE_IMAGE" "$WORKLOAD_IMAGE"
}

# Without CAP_SYS_RESOURCE (sandboxed machines, CI here) no process may lower an oom_score_adj, and the
# kubelet asks for -998 for every sandbox: runc init dies ("can't get final child's PID from pipe").
# containerd's restrict_oom_score_adj keeps each score at or above containerd's own instead.
has_cap_sys_resource() {
  local eff; eff=$(awk '/^CapEff:/{print $2}' /proc/self/status)
  (( (16#$eff >> 24) & 1 ))
}

write_kubelet_config() {
  cat > "$DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $DIR/pki/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $DIR/pki/kubelet-server.crt
tlsPrivateKeyFile: $DIR/pki/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
# cgroupfs: no systemd runs here; cgroup v1, hybrid and v2 alike (failCgroupV1 off for v1 and hybrid).
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
staticPodPath: ""
# The images are imported, not pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
maxPods: 110
serializeImagePulls: false
EOF
}

# kube-ipam the way a cluster installs it: its image in the runtime, deploy/ applied with kubectl.
install_kube_ipam() {
  log "kube-ipam from deploy/ (network $POD_SUBNET, range $RANGE_START-$RANGE_END)"
  kc -n kube-system create secret generic kube-ipam-etcd-tls --from-file=ca.crt="$DIR/pki/ca.crt" \
    --from-file=tls.crt="$DIR/pki/kube-ipam-etcd-client.crt" --from-file=tls.key="$DIR/pki/kube-ipam-etcd-client.key" >/dev/null
  kc apply -f "$repo/deploy/rbac.yaml" >/dev/null
  "$repo/scripts/cluster/network-config.sh" > "$DIR/10-kube-ipam.conf"
  kc -n kube-system create configmap kube-ipam-config --from-file=10-kube-ipam.conf="$DIR/10-kube-ipam.conf" \
    --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc apply -f "$repo/deploy/kube-ipam-daemonset.yaml" -f "$repo/deploy/kube-ipam-controller.yaml" >/dev/null
  wait_for "the DaemonSet to install /etc/cni/net.d/10-kube-ipam.conf" 120 test -e /etc/cni/net.d/10-kube-ipam.conf
  wait_for "node $NODE_NAME to be Ready" 90 node_ready
  wait_for "the kube-ipam DaemonSet pod to be ready" 90 kc -n kube-system rollout status daemonset/kube-ipam --timeout 1s
}

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# Everything of the cluster that is on the machine now, one line each; nothing when it is all gone.
leftovers() {
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd containerd-shim-runc-v2; do
    pgrep -a -x "$p" 2>/dev/null | grep -F -e "$DIR" -e "$RUN" | sed 's/^/process: /' || true
  done
  grep -E " ($(echo "$DIR|$RUN|/var/lib/kubelet|/run/netns/cni-|/var/run/netns/cni-" | sed 's/[.]/\\./g'))" /proc/self/mounts | awk '{print "mount: " $2}' || true
  ip netns list 2>/dev/null | awk '/^cni-/{print "netns: " $1}' || true
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "interface: $BRIDGE"
  iptables-save 2>/dev/null | grep -E -e "$CHAIN" -e 'KUBE-' | sed 's/^/iptables: /' || true
  ip6tables-save 2>/dev/null | grep -E -e "$CHAIN" -e 'KUBE-' | sed 's/^/ip6tables: /' || true
  for f in "$DIR" "$RUN" /var/lib/kubelet /etc/cni/net.d/10-kube-ipam.conf /opt/cni/bin/kube-ipam /opt/cni/bin/kube-ipam-core \
           /etc/kube-ipam /run/kube-ipam /var/lib/cni/kube-ipam /var/log/pods /var/log/containers; do
    [ -e "$f" ] && echo "file: $f"
  done
  find /sys/fs/cgroup -maxdepth 3 -type d -name kubepods 2>/dev/null | sed 's/^/cgroup: /' || true
}

cmd_down() {
  need_root
  # The kubelet first, so nothing restarts what is being stopped; then every pod through the runtime, so
  # each sandbox's network is torn down by the CNI plugin as on a real node.
  stop kubelet
  if [ -S "$CONTAINERD_SOCKET" ] && [ -f "$DIR/bin-dir" ] && [ -x "$(cat "$DIR/bin-dir")/crictl" ]; then
    local crictl; crictl=$(cat "$DIR/bin-dir")/crictl
    timeout 60 "$crictl" --runtime-endpoint "unix://$CONTAINERD_SOCKET" rmp -fa >/dev/null 2>&1 || true
  fi
  stop containerd
  # Shims outlive containerd by design; they and their containers go now.
  pkill -9 -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCKET" 2>/dev/null || true
  for p in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$p"; done
  kill_cgroup_tasks
  # Mounts: the kubelet's volumes, containerd's rootfs and shm, the network namespaces' bind mounts.
  local m
  for m in $(awk '{print $2}' /proc/self/mounts | grep -E "^($DIR|$RUN|/var/lib/kubelet|/run/netns/cni-|/var/run/netns/cni-)" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    ip link delete "$v" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  iptables_down iptables
  iptables_down ip6tables
  [ -f "$DIR/ip_forward.before" ] && cat "$DIR/ip_forward.before" > /proc/sys/net/ipv4/ip_forward
  if [ -f "$DIR/cni-links" ]; then xargs -r rm -f < "$DIR/cni-links"; fi
  rmdir /opt/cni/bin /opt/cni 2>/dev/null || true
  rm -rf "$DIR" "$RUN" /var/lib/kubelet /etc/cni/net.d/10-kube-ipam.conf /opt/cni/bin/kube-ipam /opt/cni/bin/kube-ipam-core \
    /etc/kube-ipam /run/kube-ipam /var/lib/cni/kube-ipam /var/log/pods /var/log/containers /var/log/kube-ipam.log
  remove_cgroups
  local left; left=$(leftovers)
  if [ -n "$left" ]; then echo "$left" >&2; die "down left the above behind"; fi
  log "down: nothing left"
}

# stop NAME: SIGTERM, then SIGKILL after 10 s.
stop() {
  local name=$1 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

# Whatever still runs in the pods' cgroups (containers whose shim was killed) is killed.
kill_cgroup_tasks() {
  local f
  for f in $(find /sys/fs/cgroup -path '*kubepods*' -name cgroup.procs 2>/dev/null); do
    xargs -r kill -9 < "$f" 2>/dev/null || true
  done
}

remove_cgroups() {
  local d
  for d in $(find /sys/fs/cgroup -depth -type d -path '*kubepods*' 2>/dev/null); do rmdir "$d" 2>/dev/null || true; done
}

# The node's chain, and the chains the kubelet makes for kube-proxy's benefit (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT, ...), with every rule that jumps to them.
iptables_down() {
  local tool=$1 table saved chains chain rule
  command -v "$tool" >/dev/null 2>&1 || return 0
  for table in filter nat mangle; do
    saved=$("$tool-save" -t "$table" 2>/dev/null || true)
    while read -r rule; do
      [ -n "$rule" ] && eval "$tool -t $table ${rule/-A /-D }" 2>/dev/null || true
    done < <(printf '%s\n' "$saved" | grep -E -- "^-A .*-j ($CHAIN|KUBE-[A-Z0-9-]+)( |\$)" | grep -v -E "^-A ($CHAIN|KUBE-)" || true)
    chains=$(printf '%s\n' "$saved" | sed -n -E "s/^:(($CHAIN|KUBE-[A-Z0-9-]+)) .*/\\1/p")
    for chain in $chains; do "$tool" -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do "$tool" -t "$table" -X "$chain" 2>/dev/null || true; done
  done
}

cmd_env() {
  [ -f "$DIR/admin.kubeconfig" ] || die "no cluster: scripts/cluster.sh up"
  echo "export KUBECONFIG=$DIR/admin.kubeconfig"
  echo "export PATH=$(cat "$DIR/bin-dir"):\$PATH"
}

cmd_status() {
  if running; then echo "up: node $NODE_NAME, kubeconfig $DIR/admin.kubeconfig"; else echo "down"; fi
  leftovers
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  leftovers) leftovers ;;
  # For tests of a node whose kubelet is gone (its pods keep running under containerd).
  stop-kubelet) need_root; stop kubelet ;;
  start-kubelet) need_root; running || { BIN=$(cat "$DIR/bin-dir"); start_kubelet; } ;;
  *) echo "usage: scripts/cluster.sh up|down|env|status|stop-kubelet|start-kubelet" >&2; exit 2 ;;
esac
