#!/usr/bin/env bash
# The cluster's certificates, with openssl: one CA (ECDSA P-256) that signs every serving and client
# certificate, as kubeadm's layout has them, and the service-account signing key.
#   pki.sh DIR NODE_NAME NODE_IP KUBERNETES_SERVICE_IP
# Client certificates carry the identities the API server's built-in RBAC knows: admin in system:masters,
# system:kube-controller-manager, system:kube-scheduler, and system:node:NODE in system:nodes (the Node
# authorizer and NodeRestriction check that name).
set -euo pipefail
dir=$1 node=$2 node_ip=$3 service_ip=$4
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

openssl_cnf() { # EXTENSIONS...
  printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\n'
  printf '%s\n' "$@"
}

# cert NAME SUBJECT EKU [SAN]
cert() {
  local name=$1 subject=$2 eku=$3 san=${4:-}
  key "$name"
  local ext=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=$eku")
  [ -n "$san" ] && ext+=("subjectAltName=$san")
  openssl_cnf "${ext[@]}" > "$name.cnf"
  openssl req -new -key "$name.key" -subj "$subject" -config "$name.cnf" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$name.cnf" -extensions ext -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.cnf"
}

key ca
openssl_cnf "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" > ca.cnf
openssl req -x509 -new -key ca.key -subj "/CN=kube-ipam-cluster-ca" -days 30 -config ca.cnf -extensions ext -out ca.crt 2>/dev/null
rm -f ca.cnf

# clientAuth too: etcd 3.4's JSON gateway, which kube-ipam speaks, dials etcd's own gRPC with the server's
# certificate as its client certificate, and etcd refuses that connection without it.
cert etcd-server "/CN=etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
cert kube-ipam-etcd-client "/CN=kube-ipam" clientAuth
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$node_ip,IP:$service_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kubelet "/O=system:nodes/CN=system:node:$node" clientAuth
cert kubelet-server "/CN=$node" serverAuth "IP:$node_ip,DNS:$node"
key sa
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
rm -f ca.srl
