// The chaos bed's hosts: who lives in which network namespace at which address. Pure: the namespaces
// themselves are made by netns.ts. Every host has one veth into a bridge in the switch namespace; the test
// process (root namespace) is on the same bridge as the observer (it reads etcd's state and history, and
// is never partitioned) and as the Kubernetes API's address (which the faults can cut hosts off from).
export type Role = "member" | "host" | "controller";

export interface BedNode {
  readonly name: string;
  readonly role: Role;
  /** The network namespace it runs in. */
  readonly netns: string;
  readonly ip: string;
}

/** The bed's own network, 10.213.0.0/24 (the pods' addresses are another: bed.ts's POD_SUBNET). */
const SUBNET_PREFIX = "10.213.0";
/** The root namespace's addresses on the bridge: the test process's own, and the one the API is reached at. */
export const OBSERVER_IP = `${SUBNET_PREFIX}.1`;
export const API_IP = `${SUBNET_PREFIX}.2`;
export const SWITCH_NETNS = "kic-sw";
export const NETNS_PREFIX = "kic-";
/** The root namespace's end of its veth (the switch's ends are "s-<name>"). */
export const ROOT_LINK = "kic-root";

export const MEMBERS: readonly BedNode[] = [1, 2, 3].map((i) => node(`e${i}`, "member", 10 + i));
export const HOSTS: readonly BedNode[] = [1, 2, 3, 4].map((i) => node(`h${i}`, "host", 20 + i));
export const CONTROLLERS: readonly BedNode[] = [1, 2].map((i) => node(`c${i}`, "controller", 30 + i));
export const NODES: readonly BedNode[] = [...MEMBERS, ...HOSTS, ...CONTROLLERS];

function node(name: string, role: Role, octet: number): BedNode {
  return { name, role, netns: `${NETNS_PREFIX}${name}`, ip: `${SUBNET_PREFIX}.${octet}` };
}

export function nodeNamed(name: string): BedNode {
  const n = NODES.find((x) => x.name === name);
  if (!n) throw new Error(`no bed node "${name}"`);
  return n;
}

export const CLIENT_PORT = 2379;
export const PEER_PORT = 2380;
export const clientUrl = (m: BedNode) => `http://${m.ip}:${CLIENT_PORT}`;
export const peerUrl = (m: BedNode) => `http://${m.ip}:${PEER_PORT}`;
/** Every member's client URL, as the plugin's etcdConfig.etcdURL lists them. */
export const ETCD_URLS = MEMBERS.map(clientUrl).join(",");
