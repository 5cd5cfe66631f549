// The chaos bed's network: a namespace per node, joined by veth to a bridge in a switch namespace, and the
// faults that cut, slow or thin the links. Partitions are nftables rules in the affected nodes' own
// namespaces (iptables' successor in Debian, on the same kernel hooks); a slow link is an htb class on the
// node's veth that a random share of its packets is marked into (queueing delay and reordering); a lossy
// link drops a random share with nftables' numgen. tc netem would do the last two in one qdisc, but this
// machine's kernel has no sch_netem (no modules at all: it is a Firecracker guest), and htb, u32 and
// nftables are in every kernel a cluster runs on.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { API_IP, type BedNode, NETNS_PREFIX, NODES, OBSERVER_IP, ROOT_LINK, SWITCH_NETNS } from "./topology.ts";

const STATE_DIR = "/run/kube-ipam-chaos";
const OWNER_FILE = `${STATE_DIR}/owner`;
/** The mark a slow link's share of packets carries into its slow class. */
const SLOW_MARK = 0x2a;

export function run(argv: readonly string[], input?: string): string {
  const r = Bun.spawnSync([...argv], { stdin: input === undefined ? "ignore" : new TextEncoder().encode(input), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** argv run inside `netns` (ip netns exec execs it: the pid is the program's). */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", netns, ...argv];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Claims the machine's one bed; a bed left by a killed run is removed first, one still in use refused. */
function takeOwnership(): void {
  mkdirSync(STATE_DIR, { recursive: true });
  if (existsSync(OWNER_FILE)) {
    const pid = Number(readFileSync(OWNER_FILE, "utf8"));
    if (pid !== process.pid && alive(pid)) {
      throw new Error(`another chaos bed is running (pid ${pid}, ${OWNER_FILE}): one bed at a time on a machine`);
    }
  }
  removeNamespaces();
  // etcd's data of a bed whose run was killed (bed.ts puts it here; one bed at a time, so none is in use).
  for (const d of readdirSync("/dev/shm")) if (d.startsWith("kube-ipam-chaos-")) rmSync(`/dev/shm/${d}`, { recursive: true, force: true });
  writeFileSync(OWNER_FILE, String(process.pid));
}

function removeNamespaces(): void {
  for (const line of run(["ip", "netns", "list"]).split("\n")) {
    const name = line.split(" ")[0];
    if (name?.startsWith(NETNS_PREFIX)) run(["ip", "netns", "del", name]);
  }
  Bun.spawnSync(["ip", "link", "del", ROOT_LINK], { stderr: "ignore" });
}

/** Makes every node's namespace and link, and the root namespace's link with the observer's and the API's address. */
export function createNetwork(): void {
  takeOwnership();
  run(["ip", "netns", "add", SWITCH_NETNS]);
  const sw = (argv: string[]) => run(inNetns(SWITCH_NETNS, argv));
  sw(["ip", "link", "add", "br0", "type", "bridge"]);
  sw(["ip", "link", "set", "br0", "up"]);
  const attach = (peer: string) => {
    sw(["ip", "link", "set", peer, "master", "br0"]);
    sw(["ip", "link", "set", peer, "up"]);
  };
  run(["ip", "link", "add", ROOT_LINK, "type", "veth", "peer", "name", "s-root", "netns", SWITCH_NETNS]);
  attach("s-root");
  run(["ip", "addr", "add", `${OBSERVER_IP}/24`, "dev", ROOT_LINK]);
  run(["ip", "addr", "add", `${API_IP}/24`, "dev", ROOT_LINK]);
  run(["ip", "link", "set", ROOT_LINK, "up"]);
  for (const n of NODES) {
    run(["ip", "netns", "add", n.netns]);
    run(["ip", "link", "add", "name", `s-${n.name}`, "netns", SWITCH_NETNS, "type", "veth", "peer", "name", "eth0", "netns", n.netns]);
    attach(`s-${n.name}`);
    const x = (argv: string[]) => run(inNetns(n.netns, argv));
    x(["ip", "link", "set", "lo", "up"]);
    x(["ip", "addr", "add", `${n.ip}/24`, "dev", "eth0"]);
    x(["ip", "link", "set", "eth0", "up"]);
  }
}

export function destroyNetwork(): void {
  removeNamespaces();
  rmSync(OWNER_FILE, { force: true });
}

/** What a node stops hearing (`dropFrom`) and saying (`dropTo`), by address. */
export interface Cut {
  readonly dropFrom: readonly string[];
  readonly dropTo: readonly string[];
}

const nft = (netns: string, script: string) => run(inNetns(netns, ["nft", "-f", "-"]), script);
const set = (ips: readonly string[]) => `{ ${ips.join(", ")} }`;

/** Replaces the node's partition rules with `cut`. */
export function applyCut(node: BedNode, cut: Cut): void {
  clearCut(node);
  const rules = [
    "table inet chaos_cut {",
    "  chain input { type filter hook input priority 0; }",
    "  chain output { type filter hook output priority 0; }",
    "}",
    ...(cut.dropFrom.length ? [`add rule inet chaos_cut input ip saddr ${set(cut.dropFrom)} drop`] : []),
    ...(cut.dropTo.length ? [`add rule inet chaos_cut output ip daddr ${set(cut.dropTo)} drop`] : []),
  ];
  nft(node.netns, `${rules.join("\n")}\n`);
}

export function clearCut(node: BedNode): void {
  Bun.spawnSync(inNetns(node.netns, ["nft", "delete", "table", "inet", "chaos_cut"]), { stderr: "ignore" });
}

/** A degraded link: `lossPercent` of packets dropped each way, `slowPercent` of those sent queued behind a slow class. */
export interface Link {
  readonly lossPercent: number;
  readonly slowPercent: number;
}

/** An nftables match for a random `percent` of packets (nothing to match at 100: numgen's values stop at 99). */
const share = (percent: number) => (percent >= 100 ? "" : `numgen random mod 100 < ${percent} `);

export function applyLink(node: BedNode, link: Link): void {
  clearLink(node);
  const x = (argv: string[]) => run(inNetns(node.netns, argv));
  const rules = [
    "table inet chaos_link {",
    "  chain input { type filter hook input priority 0; }",
    "  chain output { type filter hook output priority 0; }",
    "}",
  ];
  if (link.lossPercent > 0) {
    for (const chain of ["input", "output"]) rules.push(`add rule inet chaos_link ${chain} ${share(link.lossPercent)}drop`);
  }
  if (link.slowPercent > 0) {
    x(["tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10", "r2q", "1000"]);
    x(["tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "1gbit"]);
    // 256 kbit/s: a full-size packet waits about 50 ms for each one ahead of it in the class.
    x(["tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:20", "htb", "rate", "256kbit"]);
    x(["tc", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "mark",
      String(SLOW_MARK), "0xffffffff", "flowid", "1:20"]);
    rules.push(`add rule inet chaos_link output ${share(link.slowPercent)}meta mark set ${SLOW_MARK}`);
  }
  nft(node.netns, `${rules.join("\n")}\n`);
}

export function clearLink(node: BedNode): void {
  Bun.spawnSync(inNetns(node.netns, ["nft", "delete", "table", "inet", "chaos_link"]), { stderr: "ignore" });
  Bun.spawnSync(inNetns(node.netns, ["tc", "qdisc", "del", "dev", "eth0", "root"]), { stderr: "ignore" });
}
