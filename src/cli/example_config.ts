// `kube-ipam example-config [macvlan|ipvlan|bridge|calico]`: a valid network config to start from
// (the seed's -outputconf).
import { UsageError } from "./flags.ts";

const IPAM = {
  type: "kube-ipam",
  etcdConfig: {
    etcdURL: "https://192.168.1.50:2379,https://192.168.1.51:2379,https://192.168.1.52:2379",
    etcdCertFile: "/etc/kubernetes/ssl/etcd.pem",
    etcdKeyFile: "/etc/kubernetes/ssl/etcd-key.pem",
    etcdTrustedCAFileFile: "/etc/kubernetes/ssl/ca.pem",
  },
  kubeConfig: "/etc/kubernetes/pki/kubectl.kubeconfig",
  subnet: "10.188.0.0/16",
  rangeStart: "10.188.0.10",
  rangeEnd: "10.188.0.200",
  gateway: "10.188.0.1",
  routes: [{ dst: "0.0.0.0/0" }],
  resolvConf: "/etc/resolv.conf",
  logFile: "/var/log/kube-ipam.log",
};

const MAIN: Record<string, Record<string, unknown>> = {
  macvlan: { type: "macvlan", master: "eth1", mode: "bridge" },
  ipvlan: { type: "ipvlan", master: "eth1", mode: "l2" },
  bridge: { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true },
  calico: { type: "calico", datastore_type: "kubernetes", nodename: "__KUBERNETES_NODE_NAME__", mtu: 1500 },
};

export const EXAMPLE_KINDS = Object.keys(MAIN);

export function exampleConfig(kind = "macvlan"): string {
  const main = MAIN[kind];
  if (!main) throw new UsageError(`No example for "${kind}": choose one of ${EXAMPLE_KINDS.join(", ")}`);
  return `${JSON.stringify({ cniVersion: "1.0.0", name: `${kind}-net`, ...main, ipam: IPAM }, null, 2)}\n`;
}
