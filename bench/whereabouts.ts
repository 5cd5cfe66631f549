// The peer: whereabouts v0.5.4 with its etcd datastore (../shared/peers/README.md), on the same etcd as
// kube-ipam. It keeps a whole range in one etcd key, `/whereabouts/<range CIDR>`, whatever the network's
// name, so two pools of the bench with the same CIDR would share their allocations: every pool it gets is
// moved to a second octet of its own (10.50.0.0/23 becomes 10.k.0.0/23, the same size and offsets).
import { readFileSync } from "node:fs";

export interface PoolRange {
  readonly subnet: string;
  readonly rangeStart?: string;
  readonly rangeEnd?: string;
}

export interface PeerEtcd {
  /** http(s)://host:port of one member: whereabouts takes a single endpoint. */
  readonly endpoint: string;
  /** Paths of a client certificate, its key and the CA, for an etcd with mutual TLS. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

let pools = 0;

function moved(address: string, k: number): string {
  return address.replace(/^10\.\d+\./, `10.${k}.`);
}

/** Network configs for whereabouts on `etcd`, each on a range no other pool of the run uses. */
export function whereaboutsConf(etcd: PeerEtcd) {
  return (range: PoolRange): string => {
    const k = pools++;
    const prefix = Number(range.subnet.split("/")[1]);
    if (!range.subnet.startsWith("10.") || prefix < 16 || k > 255) {
      throw new Error(`whereabouts pools are moved within 10.0.0.0/8: cannot place ${range.subnet} as pool ${k}`);
    }
    const ipam: Record<string, string> = {
      type: "whereabouts", datastore: "etcd", etcd_host: etcd.endpoint.replace(/^https?:\/\//, ""),
      range: moved(range.subnet, k), log_level: "error", // its debug lines would go to stderr
    };
    if (range.rangeStart) ipam.range_start = moved(range.rangeStart, k);
    if (range.rangeEnd) ipam.range_end = moved(range.rangeEnd, k);
    if (etcd.tls) Object.assign(ipam, { etcd_cert_file: etcd.tls.cert, etcd_key_file: etcd.tls.key, etcd_ca_cert_file: etcd.tls.ca });
    // 0.4.0 is the newest CNI version it accepts.
    return JSON.stringify({ cniVersion: "0.4.0", name: `wa${k}`, type: "macvlan", ipam });
  };
}

const toInt = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

/**
 * Fills the pool of `conf` with `count` allocations, from its range_start on, by writing the range's value
 * as whereabouts itself writes it ("<address> <container ID>" lines joined by "\n", in allocation
 * order). Filling 3,891 addresses through the plugin takes about 4.5 minutes on this machine: every ADD
 * takes the range's lock and rewrites the whole value, at any concurrency. Returns the address the next
 * ADD must get (the lowest free one), for the caller to check that whereabouts read the value as its own.
 */
export async function seedWhereabouts(etcd: PeerEtcd, conf: string, count: number): Promise<string> {
  const ipam = (JSON.parse(conf) as { ipam: Record<string, string> }).ipam;
  if (!ipam.range_start) throw new Error("seedWhereabouts needs a range_start");
  const start = toInt(ipam.range_start);
  const value = Array.from({ length: count }, (_, i) => `${toIp(start + i)} seed-${i}`).join("\n");
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const tls = etcd.tls && { cert: readFileSync(etcd.tls.cert, "utf8"), key: readFileSync(etcd.tls.key, "utf8"), ca: readFileSync(etcd.tls.ca, "utf8") };
  const res = await fetch(`${etcd.endpoint}/v3/kv/put`, {
    method: "POST", tls, body: JSON.stringify({ key: b64(`/whereabouts/${ipam.range}`), value: b64(value) }),
  });
  if (!res.ok) throw new Error(`seeding whereabouts' ${ipam.range} failed: ${res.status} ${await res.text()}`);
  return toIp(start + count);
}
