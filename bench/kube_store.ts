// Bench scenario (Kubernetes datastore): kube-ipam's Kubernetes store against whereabouts at its current
// release (v0.9.2, built from the Go module proxy by scripts/peers/build-whereabouts.sh) with its Kubernetes
// datastore, side by side on one real kube-apiserver v1.34 (etcd's data on disk unless --etcd-data tmpfs).
//   bun bench/kube_store.ts [--quick] [--write] [--etcd-data disk|tmpfs]
// Variants: kube-ipam run by itself per ADD (agentSocket ""), kube-ipam through its node agent, whereabouts.
// Each ADD names a pod that exists in the API (kube-ipam reads it: annotations; the agent from its watch-fed
// pod cache), as in a cluster; whereabouts never reads the pod. Scenarios:
//   A  one ADD at a time on an empty pool
//   B  10 ADDs at a time
//   C  one ADD at a time into a pool of 4,093 filled to 0%, 50% and 95%; then etcd's size after 4,000 ADDs
// For each: time per ADD, and the API server's own counts (apiserver_request_total and
// apiserver_response_sizes_bytes of the variant's resources) per ADD.
import { cpus, loadavg, totalmem } from "node:os";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { etcdBinary, type KubeApiServer, startKubeApiServer } from "../test/support/kube_apiserver.ts";
import { installWhereaboutsCrds, whereaboutsK8sBuild, whereaboutsK8sConf, whereaboutsServiceAccountToken } from "./peers/whereabouts_k8s.ts";
import { type Agent, startAgent } from "./agent.ts";
import { median, percentile, pool } from "./plugin_runner.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = resolve(ROOT, "dist/kube-ipam");
const quick = process.argv.includes("--quick");
const write = process.argv.includes("--write");
const etcdData = process.argv.includes("tmpfs") ? "tmpfs" : "disk";
/** --only C: the fill levels and etcd's size only. */
const onlyC = process.argv.includes("--only") && process.argv.includes("C");
const NAMESPACE = "bench";
const NODES = 10;

interface Variant {
  readonly label: string;
  readonly binary: string;
  /** The network config for a pool; `name` distinct per pool. */
  conf(name: string, range: Range): string;
  /** The API groups (and core resources) whose requests are this variant's. */
  readonly counts: (labels: Record<string, string>) => boolean;
}

interface Range {
  readonly subnet: string;
  readonly rangeStart: string;
  readonly rangeEnd: string;
}

// A /20 without its network, broadcast and gateway addresses: 4,093 to hand out in both.
const POOL: Range = { subnet: "10.90.0.0/20", rangeStart: "10.90.0.2", rangeEnd: "10.90.15.254" };
const POOL_SIZE = 4093;

let work: string;
let api: KubeApiServer;
const uids = new Map<string, string>();
let seq = 0;

function kubeIpamConf(kubeconfig: string, agentSocket: string) {
  return (name: string, r: Range) => JSON.stringify({
    cniVersion: "1.0.0", name, type: "macvlan",
    ipam: { type: "kube-ipam", datastore: "kubernetes", kubeConfig: kubeconfig, subnet: r.subnet, rangeStart: r.rangeStart,
      rangeEnd: r.rangeEnd, gateway: "10.90.0.1", logFile: join(work, "kube-ipam.log"), logLevel: "warn", agentSocket },
  });
}

const ours = (l: Record<string, string>) => l.group === "kube-ipam.io" || (l.group === "" && l.resource === "pods" && l.verb !== "POST" && l.verb !== "DELETE");
const theirs = (l: Record<string, string>) => l.group === "whereabouts.cni.cncf.io" || l.resource === "leases";

/** Creates the pods the calls name (as the admin: not counted for any variant), on their nodes. */
async function makePods(ids: readonly string[]): Promise<void> {
  await pool(ids, 8, async (id, i) => {
    const r = await api.request("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
      apiVersion: "v1", kind: "Pod", metadata: { name: id, namespace: NAMESPACE },
      spec: { nodeName: nodeOf(id, i), automountServiceAccountToken: false, containers: [{ name: "main", image: "registry.k8s.io/pause:3.10.1" }] },
    });
    if (r.status !== 201) throw new Error(`create pod ${id}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    uids.set(id, r.body.metadata.uid);
  });
}

const nodes = new Map<string, string>();
function nodeOf(id: string, i: number): string {
  let n = nodes.get(id);
  if (!n) nodes.set(id, n = `node-${i % NODES}`);
  return n;
}

async function cni(v: Variant, conf: string, command: "ADD" | "DEL", id: string): Promise<{ ok: boolean; ms: number; out: string }> {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin", CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${id}`,
    CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", KUBE_IPAM_NODE_NAME: nodes.get(id) ?? "node-0",
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NAMESPACE};K8S_POD_NAME=${id};K8S_POD_UID=${uids.get(id) ?? ""}`,
  };
  const started = performance.now();
  const proc = Bun.spawn([v.binary], { env, stdin: new TextEncoder().encode(conf), stdout: "pipe", stderr: "pipe" });
  const [out, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { ok: code === 0, ms: performance.now() - started, out };
}

async function must(v: Variant, conf: string, command: "ADD" | "DEL", id: string) {
  const r = await cni(v, conf, command, id);
  if (!r.ok) throw new Error(`${v.label}: ${command} ${id} failed: ${r.out.slice(0, 300)}`);
  return r;
}

const breakdown = new Map<string, number>();

/** The API server's request counts and response bytes, summed over the series `keep` selects. */
async function apiCounters(keep: (labels: Record<string, string>) => boolean): Promise<{ requests: number; bytes: number }> {
  const r = await fetch(`${api.url}/metrics`, { tls: { ca: readFileSync(api.pki.ca.cert, "utf8"), cert: readFileSync(api.adminCert.cert, "utf8"),
    key: readFileSync(api.adminCert.key, "utf8") } } as RequestInit);
  const text = await r.text();
  let requests = 0;
  let bytes = 0;
  const seen = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(apiserver_request_total|apiserver_response_sizes_sum)\{(.*)\} ([\d.e+]+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    if (!keep(labels)) continue;
    if (process.env.BENCH_DEBUG && m[1] === "apiserver_request_total") {
      const k = `${labels.resource} ${labels.verb}`;
      seen.set(k, (seen.get(k) ?? 0) + Number(m[3]));
    }
    if (m[1] === "apiserver_request_total") requests += Number(m[3]);
    else bytes += Number(m[3]);
  }
  for (const [k, n] of seen) breakdown.set(k, n);
  return { requests, bytes };
}

interface Measured {
  readonly msPerAdd: number[];
  readonly requestsPerAdd: number;
  readonly bytesPerAdd: number;
}

/** `n` ADDs of new pods, `concurrency` at a time, on `conf`; the pods' addresses are kept (DEL'd by the caller). */
async function adds(v: Variant, conf: string, n: number, concurrency: number): Promise<{ ids: string[]; addresses: string[]; m: Measured; wallMs: number }> {
  const ids = Array.from({ length: n }, () => `p${seq++}`);
  ids.forEach((id, i) => nodeOf(id, i));
  await makePods(ids);
  const before = await apiCounters(v.counts);
  const { results, ms } = await pool(ids, concurrency, (id) => must(v, conf, "ADD", id));
  const snapshot = new Map(breakdown);
  const after = await apiCounters(v.counts);
  if (process.env.BENCH_DEBUG) {
    console.error(v.label, n, [...breakdown].map(([k, c]) => `${k}:${((c - (snapshot.get(k) ?? 0)) / n).toFixed(2)}`).filter((x) => !x.endsWith(":0.00")).join(" "));
  }
  return {
    ids, wallMs: ms, addresses: results.map((r) => (JSON.parse(r.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!),
    m: { msPerAdd: results.map((r) => r.ms), requestsPerAdd: (after.requests - before.requests) / n, bytesPerAdd: (after.bytes - before.bytes) / n },
  };
}

async function dels(v: Variant, conf: string, ids: readonly string[]): Promise<void> {
  await pool(ids, 4, (id) => must(v, conf, "DEL", id));
}

const WHEREABOUTS_POOLS = "/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools";

function ipValue(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function ipText(n: number): string {
  return [24, 16, 8, 0].map((s) => String(Math.floor(n / 2 ** s) % 256)).join(".");
}

/**
 * Grows the pool to `to` held addresses. kube-ipam: real ADDs through the agent, 10 at a time. whereabouts:
 * its one IPPool object is written as its ADDs would leave it (the allocations map, by the admin): filled by
 * real ADDs, its Lease serializes every call and each rewrites the whole pool, about half an hour for 4,000
 * on this machine. The next real ADD must then take the first address after the seeded ones.
 */
async function fillTo(v: Variant, conf: string, held: number, to: number): Promise<number> {
  if (to <= held) return held;
  if (!v.label.startsWith("whereabouts")) {
    await adds(v, conf, to - held, 10);
    return to;
  }
  const network = (JSON.parse(conf) as { name: string }).name;
  const probe = await adds(v, conf, 1, 1);
  const address = probe.addresses[0]!;
  const list = await api.request("GET", WHEREABOUTS_POOLS);
  const pool = (list.body.items as any[]).find((p) => p.metadata.name.startsWith(`${network}-`));
  if (!pool) throw new Error(`whereabouts: no IPPool of network ${network}`);
  const [key] = Object.entries(pool.spec.allocations as Record<string, { id: string }>).find(([, a]) => a.id === probe.ids[0]) ?? [];
  if (key === undefined) throw new Error(`whereabouts: IPPool ${pool.metadata.name} has no allocation of ${probe.ids[0]}`);
  const base = ipValue(address) - Number(key);
  const allocations: Record<string, unknown> = {};
  const start = ipValue(POOL.rangeStart);
  for (let i = 0, added = 0; added < to - held - 1; i++) {
    const k = String(start + i - base);
    if (pool.spec.allocations[k]) continue;
    allocations[k] = { id: `seed-${i}`, podref: `${NAMESPACE}/seed-${i}`, ifname: "eth0" };
    added++;
  }
  const r = await api.request("PUT", `${WHEREABOUTS_POOLS}/${pool.metadata.name}`,
    { ...pool, spec: { ...pool.spec, allocations: { ...pool.spec.allocations, ...allocations } } });
  if (r.status !== 200) throw new Error(`whereabouts: seeding IPPool ${pool.metadata.name}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  const after = Object.keys(r.body.spec.allocations).length;
  if (after !== to) throw new Error(`whereabouts: IPPool ${pool.metadata.name} holds ${after} after seeding, not ${to}`);
  const check = await adds(v, conf, 1, 1);
  const got = check.addresses[0]!;
  const free = Array.from({ length: POOL_SIZE }, (_, i) => start + i).find((n) => !r.body.spec.allocations[String(n - base)]);
  if (ipValue(got) !== free) throw new Error(`whereabouts: after seeding, the next ADD got ${got}, not ${ipText(free ?? 0)}`);
  await dels(v, conf, check.ids);
  return to;
}

/** Bytes of the current values etcd holds under `prefix` (the API server's keys), and how many keys. */
async function etcdHolds(prefix: string): Promise<{ keys: number; bytes: number }> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const r = await fetch(`${api.etcdEndpoint}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }) });
  const body = (await r.json()) as { kvs?: { key: string; value?: string }[] };
  const kvs = body.kvs ?? [];
  return { keys: kvs.length, bytes: kvs.reduce((n, kv) => n + Buffer.from(kv.key, "base64").length + Buffer.from(kv.value ?? "", "base64").length, 0) };
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
const kb = (b: number) => (b / 1024).toFixed(1);

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function describeDir(path: string): string {
  const out = Bun.spawnSync(["df", "--output=source,fstype", path]).stdout.toString().trim().split("\n")[1]?.trim().split(/\s+/);
  return out ? `${path} (${out[1]} on ${out[0]})` : path;
}

async function main() {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: npm run build`);
  work = mkdtempSync("/var/tmp/kube-ipam-bench-kube-");
  const etcdDir = etcdData === "tmpfs" ? "/dev/shm" : join(work, "etcd");
  mkdirSync(etcdDir, { recursive: true });
  const lines: string[] = [];
  const say = (s = "") => {
    lines.push(s);
    console.log(s);
  };
  let agent: Agent | undefined;
  try {
    const where = whereaboutsK8sBuild();
    api = await startKubeApiServer({ etcdDataDir: etcdDir });
    await api.installDatastore();
    await api.ensureNamespace(NAMESPACE);
    const call = (m: string, p: string, b?: unknown) => api.request(m, p, b);
    await installWhereaboutsCrds(call);
    const wToken = await whereaboutsServiceAccountToken(call);
    const kubeconfig = api.writeKubeconfig(join(work, "kube-ipam"), "token");
    const wKubeconfig = api.writeKubeconfig(join(work, "whereabouts"), "token", { token: wToken });
    // Each as its own identity: the plugin (the network config's kubeconfig, which the agent's store uses too)
    // and the agent (its pod cache).
    const started = await startAgent(BINARY, join(work, "agent"), api.writeKubeconfig(join(work, "kube-ipam-agent"), "token", { identity: "agent" }));
    if ("skipped" in started) throw new Error(started.skipped);
    agent = started.agent;
    const variants: Variant[] = [
      { label: "kube-ipam (plugin alone)", binary: BINARY, conf: kubeIpamConf(kubeconfig, ""), counts: ours },
      { label: "kube-ipam (agent)", binary: BINARY, conf: kubeIpamConf(kubeconfig, agent.socket), counts: ours },
      { label: "whereabouts v0.9.2", binary: where.bin, counts: theirs,
        conf: (name, r) => whereaboutsK8sConf({ network: name, range: r.subnet, rangeStart: r.rangeStart, rangeEnd: r.rangeEnd, kubeconfig: wKubeconfig }) },
    ];
    say(`# Bench: the Kubernetes datastore, kube-ipam against whereabouts v0.9.2`);
    say();
    say(`Machine: ${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; load before the run ${loadavg().map((l) => l.toFixed(2)).join(" ")}.`);
    const etcdVersion = Bun.spawnSync([etcdBinary(), "--version"]).stdout.toString().split("\n")[0]?.replace(/^etcd Version: /, "") ?? "?";
    say(`One real kube-apiserver v1.34.4 on its own etcd ${etcdVersion}; etcd's data in ${describeDir(etcdDir)}. Every ADD names a pod that exists` +
      ` (created beforehand by the bench, on one of ${NODES} node names). ${quick ? "Quick run (fewer samples)." : ""}`);
    say();

    // A: one at a time, empty pool. A warm-up ADD first (whereabouts' first ADD creates its IPPool).
    const nA = quick ? 10 : 40;
    const rowsA: string[][] = [];
    const resultA: Measured[] = [];
    for (const v of onlyC ? [] : variants) {
      const conf = v.conf(`a-${seq++}`, POOL);
      const warm = await adds(v, conf, 1, 1);
      const { ids, m } = await adds(v, conf, nA, 1);
      await dels(v, conf, [...warm.ids, ...ids]);
      resultA.push(m);
      rowsA.push([v.label, fmt(median(m.msPerAdd)), fmt(percentile(m.msPerAdd, 90)), m.requestsPerAdd.toFixed(1), kb(m.bytesPerAdd)]);
    }
    say(`## A: one ADD at a time (${nA} ADDs, empty pool of ${POOL_SIZE})`);
    say();
    say(table(["variant", "median ms", "p90 ms", "API requests / ADD", "API response KiB / ADD"], rowsA));
    say();

    // B: 10 at a time.
    const nB = quick ? 50 : 200;
    const rowsB: string[][] = [];
    for (const v of onlyC ? [] : variants) {
      const conf = v.conf(`b-${seq++}`, POOL);
      const warm = await adds(v, conf, 1, 1);
      const { ids, m, wallMs } = await adds(v, conf, nB, 10);
      await dels(v, conf, [...warm.ids, ...ids]);
      rowsB.push([v.label, fmt(wallMs / nB), fmt(median(m.msPerAdd)), fmt(percentile(m.msPerAdd, 99)), m.requestsPerAdd.toFixed(1), kb(m.bytesPerAdd)]);
    }
    say(`## B: 10 ADDs at a time (${nB} ADDs)`);
    say();
    say(table(["variant", "wall ms / ADD", "median ms", "p99 ms", "API requests / ADD", "API response KiB / ADD"], rowsB));
    say();

    // C: fill levels. kube-ipam's two variants share one pool (filled through the agent).
    const nC = quick ? 10 : 20;
    const rowsC: string[][] = [];
    const sizes: string[][] = [];
    // One network for both kube-ipam variants: the same pool, each with its own config (agentSocket).
    const ourName = `c-${seq++}`;
    const ourPool = variants[1]!.conf(ourName, POOL);
    const theirPool = variants[2]!.conf(`c-${seq++}`, POOL);
    const poolOf = [variants[0]!.conf(ourName, POOL), ourPool, theirPool];
    let heldOurs = 0;
    let heldTheirs = 0;
    const levels = [0, 50, 95];
    const perLevel = variants.map(() => [] as Measured[]);
    // Warm: the agent's views of the network and whereabouts' IPPool are made by a first ADD, not measured.
    for (const [i, v] of variants.entries()) await dels(v, poolOf[i]!, (await adds(v, poolOf[i]!, 1, 1)).ids);
    for (const pct of levels) {
      const target = Math.floor((POOL_SIZE * pct) / 100);
      heldOurs = await fillTo(variants[1]!, ourPool, heldOurs, target);
      heldTheirs = await fillTo(variants[2]!, theirPool, heldTheirs, target);
      for (const [i, v] of variants.entries()) {
        const { ids, m } = await adds(v, poolOf[i]!, nC, 1);
        await dels(v, poolOf[i]!, ids);
        perLevel[i]!.push(m);
      }
    }
    for (const [i, v] of variants.entries()) {
      const ms = perLevel[i]!.map((m) => median(m.msPerAdd));
      rowsC.push([v.label, ...ms.map(fmt), (ms[2]! / ms[0]!).toFixed(2), ...perLevel[i]!.map((m) => kb(m.bytesPerAdd)),
        ...perLevel[i]!.map((m) => m.requestsPerAdd.toFixed(1))]);
    }
    say(`## C: one ADD at a time into a pool of ${POOL_SIZE} filled to 0%, 50% and 95% (${nC} ADDs per level)`);
    say();
    say(table(["variant", "0% ms", "50% ms", "95% ms", "95% / 0%", "KiB / ADD at 0%", "at 50%", "at 95%", "requests / ADD at 0%", "at 50%", "at 95%"], rowsC));
    say();
    heldOurs = await fillTo(variants[1]!, ourPool, heldOurs, 4000);
    heldTheirs = await fillTo(variants[2]!, theirPool, heldTheirs, 4000);
    const oursHeld = await etcdHolds("/registry/kube-ipam.io/");
    const pools = await etcdHolds("/registry/whereabouts.cni.cncf.io/ippools/");
    const reservations = await etcdHolds("/registry/whereabouts.cni.cncf.io/overlappingrangeipreservations/");
    // Seeded allocations have no OverlappingRangeIPReservation: 4,000 of the mean one made by real ADDs.
    const perReservation = reservations.keys ? reservations.bytes / reservations.keys : 0;
    const theirsBytes = pools.bytes + 4000 * perReservation;
    sizes.push(["kube-ipam (IPAllocations, IPCursors)", String(oursHeld.keys), kb(oursHeld.bytes), kb(oursHeld.bytes / 4000)]);
    sizes.push(["whereabouts (IPPools + 4,000 OverlappingRangeIPReservations)", `${pools.keys} + 4000`, kb(theirsBytes), kb(theirsBytes / 4000)]);
    say(`## etcd after 4,000 ADDs into each pool (current keys and values under /registry/<group>/; whereabouts' IPPools with ${kb(pools.bytes / Math.max(1, pools.keys))} KiB each on average)`);
    say();
    say(table(["store", "keys", "KiB", "KiB per address"], sizes));
    say();

    // The ratios the issue sets as targets.
    const ratios = [
      ...(onlyC ? [] : [`A: agent / whereabouts ${(median(resultA[1]!.msPerAdd) / median(resultA[2]!.msPerAdd)).toFixed(2)} (target at most 0.5)`]),
      `C: agent at 95% / at 0% ${(median(perLevel[1]![2]!.msPerAdd) / median(perLevel[1]![0]!.msPerAdd)).toFixed(2)} (target at most 1.2)`,
      `C: agent bytes per ADD at 95% / at 0% ${(perLevel[1]![2]!.bytesPerAdd / perLevel[1]![0]!.bytesPerAdd).toFixed(2)} (target: independent of the fill)`,
      ...levels.map((pct, k) => `C ${pct}%: agent / whereabouts ${(median(perLevel[1]![k]!.msPerAdd) / median(perLevel[2]![k]!.msPerAdd)).toFixed(2)}`),
    ];
    say("## Ratios");
    say();
    for (const r of ratios) say(`- ${r}`);
    say();
    say(`Load after the run: ${loadavg().map((l) => l.toFixed(2)).join(" ")}. Agent requests served: ${await agent.served()}.`);
    if (write && !onlyC) writeFileSync(resolve(ROOT, "docs/bench-kube-store.md"), `${lines.join("\n")}\n`);
  } finally {
    await agent?.stop();
    await api?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
