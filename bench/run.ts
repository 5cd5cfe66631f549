// `npm run bench`: kube-ipam side by side with host-local (Go, node-local files, /usr/lib/cni) and with
// whereabouts (Go, the same etcd; ../shared/peers), run the way a container runtime runs them, in the
// same run on the same machine; kube-ipam both on its own and through the node agent. Prints the tables,
// and with --write also docs/bench-results.md and the charts under docs/.
//   bun bench/run.ts [--write] [--quick] [--only a,b,c,d,e,f,real,curve]
//                    [--etcd-data disk|tmpfs|both] [--whereabouts-fill seed|plugin]
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { makeTestPki, type TestPki } from "../test/support/certs.ts";
import { type EtcdCluster, type EtcdServer, startEtcd, startEtcdCluster } from "../test/support/etcd.ts";
import { type KubeApi, makePod, startKubeApi } from "../test/support/k8s_api.ts";
import { type Agent, startAgent } from "./agent.ts";
import { perCall, readCounters } from "./etcd_metrics.ts";
import { benchPodUID, type Call, call, canMeasureMemory, median, type Outcome, percentile, type Plugin, pool } from "./plugin_runner.ts";
import { lineChart } from "./svg.ts";
import { type PeerEtcd, seedWhereabouts, whereaboutsConf } from "./whereabouts.ts";

const ROOT = resolve(import.meta.dir, "..");
const WHEREABOUTS_SOURCE = resolve(ROOT, "../shared/peers/whereabouts");
const quick = process.argv.includes("--quick");
const write = process.argv.includes("--write");
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? new Set(process.argv[onlyArg + 1]!.split(",")) : undefined;
const want = (scenario: string) => !only || only.has(scenario);
const etcdData = option("--etcd-data", ["disk", "tmpfs", "both"] as const, "disk");
const whereaboutsFill = option("--whereabouts-fill", ["seed", "plugin"] as const, "seed");
if (!existsSync(join(ROOT, "dist/kube-ipam")) || !existsSync(join(ROOT, "dist/kube-ipam-core"))) {
  console.error("dist/kube-ipam or dist/kube-ipam-core is missing: run `npm run build` first (npm run bench does).");
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), "kube-ipam-bench-"));
const KUBE_LOG = join(work, "kube-ipam.log");
let seq = 0;

function option<T extends string>(flag: string, allowed: readonly T[], fallback: T): T {
  const i = process.argv.indexOf(flag);
  if (i < 0) return fallback;
  const v = process.argv[i + 1] as T;
  if (!allowed.includes(v)) throw new Error(`${flag} takes ${allowed.join("|")}, not "${v}"`);
  return v;
}

/**
 * A fresh copy of a binary in the work directory, made for every plugin at the same moment: a binary's
 * speed depends on how its pages sit in the page cache (docs/benchmarks.md), and a copy also keeps the
 * run on one build of kube-ipam while dist/ is rebuilt (the agent serves only its own build).
 */
function freshCopy(name: string, from: string): Plugin {
  const to = join(work, "bin", name);
  mkdirSync(join(work, "bin"), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, 0o755);
  return { name, binary: to };
}

const HOST_LOCAL = freshCopy("host-local", "/usr/lib/cni/host-local");
const KUBE_IPAM = freshCopy("kube-ipam", join(ROOT, "dist/kube-ipam"));
freshCopy("kube-ipam-core", join(ROOT, "dist/kube-ipam-core")); // the forwarder execs it from its own directory
const WHEREABOUTS = existsSync(WHEREABOUTS_SOURCE) ? freshCopy("whereabouts", WHEREABOUTS_SOURCE) : undefined;

interface Range {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
}

type Family = "host-local" | "kube-ipam" | "whereabouts";

interface Variant {
  readonly label: string;
  readonly plugin: Plugin;
  readonly conf: (range: Range) => string;
  readonly nodes: number;
  readonly family: Family;
  readonly store: "files" | "etcd";
  /** Forwards to the node agent. */
  readonly agent?: boolean;
  /** Fills a pool without the plugin (whereabouts: see seedWhereabouts); returns the next address expected. */
  readonly seed?: (conf: string, count: number) => Promise<string>;
}

function hostLocal(range: Range): string {
  const name = `hl${seq++}`;
  return JSON.stringify({ cniVersion: "1.0.0", name, type: "bridge", ipam: { type: "host-local", ranges: [[range]], dataDir: join(work, name) } });
}

// Every kube-ipam config names its agent socket: "" on the direct variants, so that an agent on the
// default socket (/run/kube-ipam/agent.sock) can never serve them.
function kubeFile(agentSocket: string) {
  return (range: Range): string => {
    const name = `kf${seq++}`;
    return JSON.stringify({
      cniVersion: "1.0.0", name, type: "bridge",
      ipam: { type: "kube-ipam", ...range, dataDir: join(work, name), logFile: KUBE_LOG, agentSocket },
    });
  };
}

interface KubeEtcdOptions {
  readonly agentSocket: string;
  readonly pki?: TestPki;
  readonly kubeConfig?: string;
}

function kubeEtcd(endpoints: readonly string[], opts: KubeEtcdOptions) {
  const tls = opts.pki && { etcdCertFile: opts.pki.client.cert, etcdKeyFile: opts.pki.client.key, etcdTrustedCAFileFile: opts.pki.ca.cert };
  return (range: Range): string => {
    const name = `ke${seq++}`;
    return JSON.stringify({
      cniVersion: "1.0.0", name, type: "bridge",
      ipam: {
        type: "kube-ipam", ...range, etcdConfig: { etcdURL: endpoints.join(","), etcdPrefix: `/bench-${process.pid}`, ...tls },
        ...(opts.kubeConfig ? { kubeConfig: opts.kubeConfig } : {}),
        logFile: KUBE_LOG, agentSocket: opts.agentSocket,
      },
    });
  };
}

const node = (v: Variant, i: number) => (v.nodes > 0 ? `node-${i % v.nodes}` : undefined);

const HOST_LOCAL_VARIANT: Variant = { label: "host-local", plugin: HOST_LOCAL, conf: hostLocal, nodes: 0, family: "host-local", store: "files" };

function kubeVariant(what: string, store: Variant["store"], conf: Variant["conf"], nodes: number, agent = false): Variant {
  return { label: `kube-ipam${agent ? " via agent" : ""}, ${what}`, plugin: KUBE_IPAM, conf, nodes, family: "kube-ipam", store, agent };
}

function whereaboutsVariant(etcd: PeerEtcd, suffix: string): Variant {
  return {
    label: `whereabouts, etcd${suffix}`, plugin: WHEREABOUTS!, conf: whereaboutsConf(etcd), nodes: 0,
    family: "whereabouts", store: "etcd", seed: (conf, count) => seedWhereabouts(etcd, conf, count),
  };
}

/** The variants on one etcd: kube-ipam direct and through the agent (10 node names), whereabouts. */
function etcdVariants(server: EtcdServer, agent: Agent | undefined, suffix: string): Variant[] {
  const on = (agentSocket: string) => kubeEtcd([server.endpoint], { agentSocket });
  return [
    kubeVariant(`etcd, 10 nodes${suffix}`, "etcd", on(""), 10),
    ...(agent ? [kubeVariant(`etcd, 10 nodes${suffix}`, "etcd", on(agent.socket), 10, true)] : []),
    ...(WHEREABOUTS ? [whereaboutsVariant({ endpoint: server.endpoint }, suffix)] : []),
  ];
}

/** The realistic configuration's variants: mTLS to etcd everywhere, a kubeconfig for kube-ipam, one node. */
function realVariants(real: Realistic, agent: Agent | undefined): Variant[] {
  const kubeConfig = real.api.writeKubeconfig(join(work, "kube"), "token");
  const on = (agentSocket: string) => kubeEtcd([real.etcd.endpoint], { agentSocket, pki: real.pki, kubeConfig });
  const tls = { cert: real.pki.client.cert, key: real.pki.client.key, ca: real.pki.ca.cert };
  return [
    HOST_LOCAL_VARIANT,
    kubeVariant("etcd mTLS + kubeconfig", "etcd", on(""), 1),
    ...(agent ? [kubeVariant("etcd mTLS + kubeconfig", "etcd", on(agent.socket), 1, true)] : []),
    ...(WHEREABOUTS ? [whereaboutsVariant({ endpoint: real.etcd.endpoint, tls }, " mTLS")] : []),
  ];
}

/** Calls made by agent variants, to compare with the number the agent says it served. */
let agentCalls = 0;

function run(v: Variant, conf: string, c: Call, opts: { memory?: boolean } = {}): Promise<Outcome> {
  if (v.agent) agentCalls++;
  return call(v.plugin, conf, c, opts);
}

/** `count` ADDs at `concurrency` on a fresh pool; fails loudly on an error or a duplicate. */
async function addMany(v: Variant, range: Range, count: number, concurrency: number, conf = v.conf(range)) {
  const ids = Array.from({ length: count }, (_, i) => `c${seq}-${i}`);
  seq++;
  const { results, ms } = await pool(ids, concurrency, (id, i) => run(v, conf, { command: "ADD", containerID: id, node: node(v, i) }));
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`${v.label}: ${failed.length} ADDs failed: ${failed[0]!.stdout}`);
  const distinct = new Set(results.map((r) => r.address)).size;
  if (distinct !== count) throw new Error(`${v.label}: ${count - distinct} duplicate addresses`);
  return { ms, conf, ids };
}

/** A line on stderr while a long scenario runs: not part of the results. */
function progress(line: string): void {
  process.stderr.write(`  ... ${line}\n`);
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

const x = (ratio: number) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "-");

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

// The targets of the node-agent work, each a ratio measured within this run.
interface Target {
  readonly what: string;
  readonly ratio: number;
  readonly op: "<=" | "<" | ">=";
  readonly limit: number;
}
const targets: Target[] = [];

function target(what: string, ratio: number, op: Target["op"], limit: number): void {
  if (Number.isFinite(ratio)) targets.push({ what, ratio, op, limit });
}

function met(t: Target): boolean {
  return t.op === "<=" ? t.ratio <= t.limit : t.op === "<" ? t.ratio < t.limit : t.ratio >= t.limit;
}

/** The etcd-backed variants of a list, by role, for the ratios that compare them. */
function roles(variants: readonly Variant[]) {
  const find = (f: (v: Variant) => boolean) => variants.find(f);
  return {
    hostLocal: find((v) => v.family === "host-local"),
    fileDirect: find((v) => v.family === "kube-ipam" && v.store === "files" && !v.agent),
    fileAgent: find((v) => v.family === "kube-ipam" && v.store === "files" && !!v.agent),
    etcdDirect: find((v) => v.family === "kube-ipam" && v.store === "etcd" && !v.agent),
    etcdAgent: find((v) => v.family === "kube-ipam" && v.store === "etcd" && !!v.agent),
    whereabouts: find((v) => v.family === "whereabouts"),
  };
}

/** kube-ipam on etcd (direct and through the agent) against whereabouts on the same etcd: must be faster. */
function fasterThanWhereabouts(scenario: string, variants: readonly Variant[], ratio: (a: Variant, b: Variant) => number): void {
  const r = roles(variants);
  if (!r.whereabouts) return;
  for (const v of [r.etcdDirect, r.etcdAgent]) if (v) target(`${scenario} ${v.label} / whereabouts`, ratio(v, r.whereabouts), "<", 1);
}

// 10.50.0.10 .. 10.50.1.53: exactly 300 addresses, gateway and broadcast outside.
const POOL_300: Range = { subnet: "10.50.0.0/23", rangeStart: "10.50.0.10", rangeEnd: "10.50.1.53" };

/**
 * Rounds of every variant in turn, each on a fresh pool. The ratio is the median of each round's own
 * ratio to host-local: this machine's speed drifts by 10 to 20% over minutes, and a round's variants run
 * within seconds of each other.
 */
async function scenarioA(variants: Variant[]) {
  const rounds = quick ? 1 : 5;
  const times = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const { ms } = await addMany(v, POOL_300, 300, 10);
      times.set(v.label, [...(times.get(v.label) ?? []), ms]);
    }
  }
  const ratio = (a: Variant, b: Variant) => median(times.get(a.label)!.map((ms, r) => ms / times.get(b.label)![r]!));
  const wb = roles(variants).whereabouts;
  const rows = variants.map((v) => {
    const m = median(times.get(v.label)!);
    return [v.label, fmt(m), `${(300 / (m / 1000)).toFixed(0)}/s`, x(ratio(v, variants[0]!)), wb && v.store === "etcd" ? x(ratio(v, wb)) : "-"];
  });
  fasterThanWhereabouts("(a)", variants, ratio);
  return { rows, ratio };
}

async function scenarioB(cluster: EtcdCluster) {
  const v: Variant = {
    label: "kube-ipam, 3-member etcd", plugin: KUBE_IPAM, conf: kubeEtcd(cluster.endpoints, { agentSocket: "" }),
    nodes: 10, family: "kube-ipam", store: "etcd",
  };
  // 10.60.0.10 .. 10.60.3.241: exactly 1000 addresses.
  const range: Range = { subnet: "10.60.0.0/22", rangeStart: "10.60.0.10", rangeEnd: "10.60.3.241" };
  const n = quick ? 200 : 1000;
  const r = quick ? { ...range, rangeEnd: "10.60.0.209" } : range;
  const first = await addMany(v, r, n, 20);
  const started = performance.now();
  const { results: dels } = await pool(first.ids, 20, (id, i) => run(v, first.conf, { command: "DEL", containerID: id, node: node(v, i) }));
  const delMs = performance.now() - started;
  if (dels.some((d) => !d.ok)) throw new Error("DEL failed in scenario b");
  const second = await addMany(v, r, n, 20, first.conf);
  return [
    ["create all", `${n}`, fmt(first.ms), `${(n / (first.ms / 1000)).toFixed(0)}/s`, "0"],
    ["delete all", `${n}`, fmt(delMs), `${(n / (delMs / 1000)).toFixed(0)}/s`, "-"],
    ["create all again", `${n}`, fmt(second.ms), `${(n / (second.ms / 1000)).toFixed(0)}/s`, "0"],
  ];
}

/** One ADD from a new node name (a random start point in the pool) and its DEL; the ADD's time. */
async function probe(v: Variant, conf: string, what: string): Promise<number> {
  const id = `probe${seq++}`;
  const r = await run(v, conf, { command: "ADD", containerID: id, node: `probe-node-${seq}` });
  if (!r.ok) throw new Error(`${v.label}: probe ADD failed (${what}): ${r.stdout}`);
  const d = await run(v, conf, { command: "DEL", containerID: id, node: `probe-node-${seq}` });
  if (!d.ok) throw new Error(`${v.label}: probe DEL failed (${what}): ${d.stdout}`);
  return r.ms;
}

/**
 * Runs the two calls of a pair, the first one first in even rounds and second in odd ones. The second of
 * two calls in a row runs warmer (the agent's code and etcd's connection just used, the CPU busy), and the
 * first follows another variant's process: always taking the empty pool second made it 30 to 40% cheaper
 * through the agent, which passed for a cost of a full pool.
 */
async function inTurn(round: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<void> {
  for (const call of round % 2 === 0 ? [a, b] : [b, a]) await call();
}

/** Grows the pool of `conf` from `from` to `to` allocations at concurrency 10; the time it took. */
async function fill(v: Variant, conf: string, from: number, to: number): Promise<number> {
  if (to <= from) return 0;
  const started = performance.now();
  if (v.seed && whereaboutsFill === "seed") {
    const expected = await v.seed(conf, to);
    // The plugin must take the seeded value as its own: its next address is the first one after it.
    const id = `check${seq++}`;
    const r = await run(v, conf, { command: "ADD", containerID: id });
    if (r.address !== expected) throw new Error(`${v.label}: after seeding ${to} addresses the next ADD got ${r.address ?? r.stdout}, not ${expected}`);
    await run(v, conf, { command: "DEL", containerID: id });
    return performance.now() - started;
  }
  const ids = Array.from({ length: to - from }, (_, i) => `fill${seq}-${from + i}`);
  seq++;
  const { results } = await pool(ids, 10, (id, i) => run(v, conf, { command: "ADD", containerID: id, node: `filler-${i % 10}` }));
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`${v.label}: ${failed.length} fill ADDs failed: ${failed[0]!.stdout}`);
  return performance.now() - started;
}

/**
 * ADD latency on a /22 at several fill levels; each sample from a new node name (a random start point).
 * Every sample on the filling pool is paired with one on an empty pool of its own, taken right after
 * it: the ratio at 95% compares samples of the same minute, as this machine's speed drifts.
 */
async function scenarioC(v: Variant) {
  const range: Range = { subnet: "10.70.0.0/22" };
  const size = 1021; // .1 is the gateway, .0 and the broadcast address are never handed out
  const filling = v.conf(range);
  const empty = v.conf(range);
  const samples = quick ? 10 : 30;
  const points: [number, number][] = [];
  let filled = 0;
  let last = { full: NaN, empty: NaN };
  for (const pct of [0, 25, 50, 75, 95]) {
    const target = Math.floor((size * pct) / 100);
    await fill(v, filling, filled, target);
    filled = Math.max(filled, target);
    const full: number[] = [];
    const none: number[] = [];
    for (let i = 0; i < samples; i++) {
      await inTurn(i, () => probe(v, filling, `${pct}%`).then((ms) => full.push(ms)),
        () => probe(v, empty, "empty").then((ms) => none.push(ms)));
    }
    points.push([pct, median(full)]);
    last = { full: median(full), empty: median(none) };
  }
  return { points, empty: last.empty, full: last.full };
}

/**
 * Single ADDs one at a time on a /16, the variants in turn for every sample (so that the machine's drift
 * hits them alike); the ratio is of medians. Peak RSS from a few more calls under GNU time, untimed (the
 * wrapper's own fork and exec would count in the latency).
 */
async function scenarioD(variants: Variant[]) {
  const n = quick ? 30 : 100;
  const confs = variants.map((v) => v.conf({ subnet: "10.80.0.0/16" }));
  const ms = variants.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [k, v] of variants.entries()) {
      const r = await run(v, confs[k]!, { command: "ADD", containerID: `lat${seq++}`, node: node(v, i) });
      if (!r.ok) throw new Error(`${v.label}: ADD failed in scenario d: ${r.stdout}`);
      ms[k]!.push(r.ms);
    }
  }
  const rss = variants.map(() => [] as number[]);
  if (canMeasureMemory()) {
    for (let i = 0; i < 5; i++) {
      for (const [k, v] of variants.entries()) {
        const r = await run(v, confs[k]!, { command: "ADD", containerID: `rss${seq++}`, node: node(v, i) }, { memory: true });
        if (r.maxRssKiB !== undefined) rss[k]!.push(r.maxRssKiB);
      }
    }
  }
  const med = new Map(variants.map((v, k) => [v.label, median(ms[k]!)]));
  const ratio = (a: Variant, b: Variant) => med.get(a.label)! / med.get(b.label)!;
  const wb = roles(variants).whereabouts;
  const rows = variants.map((v, k) => [
    v.label, fmt(median(ms[k]!)), fmt(percentile(ms[k]!, 99)), x(ratio(v, variants[0]!)),
    wb && v.store === "etcd" ? x(ratio(v, wb)) : "-",
    rss[k]!.length ? `${(Math.max(...rss[k]!) / 1024).toFixed(1)} MiB` : "n/a",
  ]);
  return { rows, ratio };
}

/**
 * What one ADD and one DEL cost etcd, per variant: etcd's own counters read before and after a batch of
 * calls of that variant alone, one at a time, after one warm-up ADD (the agent's first request opens
 * its connections).
 */
async function etcdCost(variants: Variant[], endpoint: string) {
  const n = quick ? 10 : 30;
  const rows: string[][] = [];
  for (const v of variants) {
    const conf = v.conf({ subnet: "10.81.0.0/16" });
    await run(v, conf, { command: "ADD", containerID: `warm${seq++}`, node: node(v, 0) });
    const ids = Array.from({ length: n }, () => `cost${seq++}`);
    for (const verb of ["ADD", "DEL"] as const) {
      const before = await readCounters(endpoint);
      for (const [i, id] of ids.entries()) {
        const r = await run(v, conf, { command: verb, containerID: id, node: node(v, i) });
        if (!r.ok) throw new Error(`${v.label}: ${verb} failed while counting etcd requests: ${r.stdout}`);
      }
      const c = perCall(before, await readCounters(endpoint), n);
      rows.push([v.label, verb, c.requests.toFixed(1), c.methods, c.received.toFixed(0), c.sent.toFixed(0)]);
    }
  }
  return rows;
}

// 10.100.0.10 .. 10.100.16.9: exactly 4,096 addresses inside a /19 (gateway .1, network and broadcast
// outside the range). --quick: 10.100.0.10 .. 10.100.4.9 in a /21, exactly 1,024.
const POOL_4096: Range = { subnet: "10.100.0.0/19", rangeStart: "10.100.0.10", rangeEnd: "10.100.16.9" };
const POOL_1024: Range = { subnet: "10.100.0.0/21", rangeStart: "10.100.0.10", rangeEnd: "10.100.4.9" };

/**
 * The cost of one ADD at 0, 50 and 95% fill of a pool of exactly 4,096 addresses. Each level: every
 * variant's pool is filled (concurrency 10), then samples are taken one ADD at a time (ADD and DEL, from a
 * new node name as in (c)), the variants in turn; each sample is paired with one on an empty pool of the
 * same variant taken right after it, so that "95% full against empty" compares the same minutes.
 */
async function scenarioF(variants: Variant[], etcdEndpoint: string) {
  const range = quick ? POOL_1024 : POOL_4096;
  const size = quick ? 1024 : 4096;
  const samples = quick ? 5 : 20;
  const levels = [0, 50, 95];
  const filling = variants.map((v) => v.conf(range));
  const empty = variants.map((v) => v.conf(range));
  const filled = variants.map(() => 0);
  const fillMs = variants.map(() => 0);
  const full = new Map<number, number[][]>();
  const paired = new Map<number, number[][]>();
  // One untimed probe on each pool first: a pool's first call makes its directories or keys, and the
  // agent's first request for a network opens its store.
  for (const [k, v] of variants.entries()) {
    await probe(v, filling[k]!, "warm-up");
    await probe(v, empty[k]!, "warm-up");
  }
  for (const pct of levels) {
    const count = Math.floor((size * pct) / 100);
    for (const [k, v] of variants.entries()) {
      const ms = await fill(v, filling[k]!, filled[k]!, count);
      if (ms > 0) progress(`(f) ${v.label}: filled to ${pct}% in ${fmt(ms)}`);
      fillMs[k]! += ms;
      filled[k] = count;
    }
    const f = variants.map(() => [] as number[]);
    const e = variants.map(() => [] as number[]);
    for (let i = 0; i < samples; i++) {
      for (const [k, v] of variants.entries()) {
        await inTurn(i, () => probe(v, filling[k]!, `${pct}%`).then((ms) => f[k]!.push(ms)),
          () => probe(v, empty[k]!, "empty").then((ms) => e[k]!.push(ms)));
      }
    }
    full.set(pct, f);
    paired.set(pct, e);
  }
  const bytes = await etcdBytesWhenFull(variants, filling, etcdEndpoint);
  const at = (pct: number, k: number) => median(full.get(pct)![k]!);
  const vsEmpty = (k: number) => at(95, k) / median(paired.get(95)![k]!);
  const rows = variants.map((v, k) => [
    v.label, ...levels.map((pct) => fmt(at(pct, k))), x(at(95, k) / at(0, k)), x(vsEmpty(k)),
    v.seed && whereaboutsFill === "seed" ? "seeded" : fmt(fillMs[k]!), bytes[k] ?? "-",
  ]);
  const idx = (v: Variant | undefined) => (v ? variants.indexOf(v) : -1);
  const r = roles(variants);
  for (const v of [r.fileDirect, r.fileAgent, r.etcdDirect, r.etcdAgent]) {
    if (v) target(`(f) ${v.label}: 95% full / empty pool (paired)`, vsEmpty(idx(v)), "<=", 1.2);
  }
  fasterThanWhereabouts("(f) 95% full:", variants, (a, b) => at(95, idx(a)) / at(95, idx(b)));
  if (r.whereabouts && r.etcdAgent) {
    for (const pct of [0, 95]) target(`(f) ${pct}% full: whereabouts / ${r.etcdAgent.label}`, at(pct, idx(r.whereabouts)) / at(pct, idx(r.etcdAgent)), ">=", 2);
  }
  return { rows, size, samples };
}

/**
 * etcd's bytes for one ADD and its DEL on each etcd variant's 95%-full pool (a few pairs of that variant
 * alone, between two readings of etcd's /metrics): whereabouts reads and rewrites the range's whole value.
 */
async function etcdBytesWhenFull(variants: Variant[], confs: string[], endpoint: string): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = [];
  for (const [k, v] of variants.entries()) {
    if (v.store !== "etcd") {
      out.push(undefined);
      continue;
    }
    const pairs = 5;
    const before = await readCounters(endpoint);
    for (let i = 0; i < pairs; i++) await probe(v, confs[k]!, "95% full, counting etcd bytes");
    const c = perCall(before, await readCounters(endpoint), pairs);
    out.push(`${(c.received / 1024).toFixed(1)} / ${(c.sent / 1024).toFixed(1)} KiB`);
  }
  return out;
}

interface Realistic {
  readonly etcd: EtcdServer;
  readonly api: KubeApi;
  readonly pki: TestPki;
}

/**
 * The realistic configuration: etcd with mutual TLS and a kubeconfig, so that every kube-ipam ADD also
 * looks its pod up. One node (an agent serves its own node's pods), one ADD at a time, the variants in
 * turn. A pod is in the API before the runtime asks for its address (scheduling, sandbox): each round's
 * pods are registered with the API stand-in one round ahead, untimed. Also the API requests per ADD.
 */
async function scenarioReal(variants: Variant[], real: Realistic) {
  const n = quick ? 30 : 100;
  const confs = variants.map((v) => v.conf({ subnet: "10.82.0.0/16" }));
  const ms = variants.map(() => [] as number[]);
  const apiRequests = variants.map(() => 0);
  const id = (i: number, k: number) => `real${i}-${k}`;
  const register = (i: number) => {
    for (const k of variants.keys()) real.api.setPod(makePod({ namespace: "bench", name: id(i, k), uid: benchPodUID(id(i, k)), nodeName: "node-0" }));
  };
  register(0);
  for (let i = 0; i < n; i++) {
    if (i + 1 < n) register(i + 1);
    for (const [k, v] of variants.entries()) {
      const before = real.api.requests.length;
      const r = await run(v, confs[k]!, { command: "ADD", containerID: id(i, k), node: "node-0" });
      if (!r.ok) throw new Error(`${v.label}: ADD failed in the realistic scenario: ${r.stdout}`);
      apiRequests[k]! += real.api.requests.length - before;
      ms[k]!.push(r.ms);
    }
  }
  const med = variants.map((_, k) => median(ms[k]!));
  const ratio = (a: Variant, b: Variant) => med[variants.indexOf(a)]! / med[variants.indexOf(b)]!;
  const wb = roles(variants).whereabouts;
  const rows = variants.map((v, k) => [
    v.label, fmt(med[k]!), fmt(percentile(ms[k]!, 99)), x(ratio(v, variants[0]!)),
    wb && v !== variants[0] ? x(ratio(v, wb)) : "-", v.family === "kube-ipam" ? (apiRequests[k]! / n).toFixed(2) : "-",
  ]);
  const r = roles(variants);
  if (r.etcdAgent && r.hostLocal) target(`(real) ${r.etcdAgent.label} / host-local`, ratio(r.etcdAgent, r.hostLocal), "<=", 2);
  fasterThanWhereabouts("(real)", variants, ratio);
  return rows;
}

async function scenarioE() {
  const rows: string[][] = [];
  for (const p of [HOST_LOCAL, KUBE_IPAM, ...(WHEREABOUTS ? [WHEREABOUTS] : [])]) {
    const ms: number[] = [];
    // whereabouts accepts CNI versions up to 0.4.0 only.
    const conf = p === WHEREABOUTS ? '{"cniVersion":"0.4.0"}' : '{"cniVersion":"1.0.0"}';
    for (let i = 0; i < (quick ? 20 : 50); i++) ms.push((await call(p, conf, { command: "VERSION", containerID: "v" })).ms);
    rows.push([p.name, `${(statSync(p.binary).size / 1024 / 1024).toFixed(1)} MiB`, fmt(median(ms))]);
  }
  return rows;
}

async function throughputCurve(variants: Variant[]) {
  const levels = quick ? [1, 5, 10] : [1, 2, 5, 10, 20];
  const n = quick ? 60 : 150;
  // Variants in turn at each level, so that the machine's drift does not favour one of them.
  const series = variants.map((v) => ({ name: v.label, points: [] as [number, number][] }));
  for (const c of levels) {
    for (const [i, v] of variants.entries()) {
      const { ms } = await addMany(v, { subnet: "10.90.0.0/16" }, n, c);
      series[i]!.points.push([c, n / (ms / 1000)]);
    }
  }
  return series;
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const etcd = Bun.spawnSync(["etcd", "--version"]).stdout.toString().split("\n")[0];
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  return `${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, ${etcd}, Bun ${Bun.version}`;
}

/** Where etcd's data directories are made: on the disk (as in production: fsync costs) or on tmpfs. */
function etcdParent(where: "disk" | "tmpfs"): string {
  if (where === "tmpfs") {
    if (!existsSync("/dev/shm")) throw new Error("--etcd-data tmpfs: this machine has no /dev/shm");
    return "/dev/shm";
  }
  const dir = join(work, "etcd");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** "PATH (FSTYPE on DEVICE)": every result says where etcd's data lives (tmpfs hides fsync). */
function describeDir(path: string): string {
  const out = Bun.spawnSync(["df", "--output=source,fstype", path]).stdout.toString().trim().split("\n")[1]?.trim().split(/\s+/);
  return out ? `${path} (${out[1]} on ${out[0]})` : path;
}

interface AgentMark {
  readonly served: number;
  readonly calls: number;
  /** Where kube-ipam's log ended: the plugin logs why it did not forward (agentFallback). */
  readonly logOffset: number;
}

async function agentMark(agent: Agent | undefined): Promise<AgentMark> {
  return { served: (await agent?.served()) ?? 0, calls: agentCalls, logOffset: existsSync(KUBE_LOG) ? statSync(KUBE_LOG).size : 0 };
}

/** Whether the agent served every call of the agent variants since `mark`; if not, how many and why not. */
async function agentNote(agent: Agent | undefined, mark: AgentMark): Promise<string | undefined> {
  if (!agent) return undefined;
  const served = (await agent.served()) - mark.served;
  const calls = agentCalls - mark.calls;
  if (Number.isNaN(served)) return `\nNote: the agent's /metrics did not answer: whether it served all ${calls} calls of the agent variants is not known.`;
  if (calls === 0 || served === calls) return undefined;
  const reasons = new Map<string, number>();
  const log = existsSync(KUBE_LOG) ? readFileSync(KUBE_LOG).subarray(mark.logOffset).toString() : "";
  for (const line of log.split("\n")) {
    if (!line.includes("agentFallback")) continue;
    let why: string | undefined;
    try {
      why = (JSON.parse(line) as { agentFallback?: string }).agentFallback;
    } catch {
      why = "(a log line that does not parse)";
    }
    if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
  }
  const list = [...reasons].map(([why, n]) => `${n} x ${why.replaceAll(agent.socket, "SOCKET")}`).join("; ");
  return `\nWARNING: the agent served ${served} of the ${calls} calls of the agent variants; the plugin ran the rest itself ` +
    `(fallback), so some of their times are not the agent's. Reasons the plugin logged: ${list || "none found"}.`;
}

async function main() {
  let etcd: EtcdServer | undefined;
  let tmpfsEtcd: EtcdServer | undefined;
  let cluster: EtcdCluster | undefined;
  let agent: Agent | undefined;
  let real: Realistic | undefined;
  const out: string[] = [];
  const say = (s: string) => {
    out.push(s);
    console.log(s);
  };
  try {
    const mainData = etcdData === "tmpfs" ? "tmpfs" : "disk";
    etcd = await startEtcd({ dataDir: etcdParent(mainData) });
    say(`Machine: ${machine()}`);
    say(`Run: ${new Date().toISOString()}${quick ? " (quick)" : ""}; load average before it: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
    say(`etcd's data (every etcd of this run): ${describeDir(etcdParent(mainData))}${etcdData === "both" ? "; in (d) also a second etcd on " + describeDir(etcdParent("tmpfs")) : ""}`);
    say(`Binaries: fresh copies in ${join(work, "bin")} of /usr/lib/cni/host-local, dist/kube-ipam${WHEREABOUTS ? `, ${WHEREABOUTS_SOURCE}` : ""}`);
    if (!WHEREABOUTS) say(`Note: the peer ${WHEREABOUTS_SOURCE} is missing: the whereabouts variants are skipped.`);

    if (["a", "d", "f", "real"].some(want)) {
      const started = await startAgent(KUBE_IPAM.binary, join(work, "agent"));
      if ("agent" in started) agent = started.agent;
      else say(`Note: the agent variants are skipped: ${started.skipped}`);
    }

    // The variants of the scenarios before the node agent (b, c, curve).
    const base = [
      HOST_LOCAL_VARIANT, kubeVariant("embedded store", "files", kubeFile(""), 0),
      kubeVariant("etcd, 10 nodes", "etcd", kubeEtcd([etcd.endpoint], { agentSocket: "" }), 10),
    ];
    // Every variant of the node-agent work: host-local; kube-ipam on each store, direct and through the
    // agent; whereabouts on the same etcd.
    const all = [
      HOST_LOCAL_VARIANT, base[1]!,
      ...(agent ? [kubeVariant("embedded store", "files", kubeFile(agent.socket), 0, true)] : []),
      ...etcdVariants(etcd, agent, ""),
    ];
    console.log("");
    const mark = () => agentMark(agent);
    const checkAgent = async (m: AgentMark) => {
      const note = await agentNote(agent, m);
      if (note) say(note);
    };

    if (want("a")) {
      const m = await mark();
      const a = await scenarioA(all);
      say("\n### (a) 300 ADDs at concurrency 10 on a pool of exactly 300 addresses\n");
      say(table(["plugin", "total (median)", "throughput", "vs host-local (median of rounds)", "vs whereabouts"], a.rows));
      await checkAgent(m);
    }

    if (want("b")) {
      cluster = await startEtcdCluster(3, { dataDir: etcdParent(mainData) });
      say(`\n### (b) ${quick ? 200 : 1000} pods, 10 nodes, as many addresses, 3-member etcd, concurrency 20\n`);
      say(table(["step", "pods", "time", "rate", "duplicates"], await scenarioB(cluster)));
      await cluster.stop();
      cluster = undefined;
    }

    const fillSeries = [];
    const fillRows: string[][] = [];
    if (want("c")) {
      for (const v of base.slice(1)) {
        const c = await scenarioC(v);
        fillSeries.push({ name: v.label, points: c.points });
        fillRows.push([v.label, fmt(c.empty), fmt(c.full), x(c.full / c.empty)]);
      }
      say("\n### (c) One ADD on a /22: empty and 95% full (median, each from a new node name, samples of both taken in turn)\n");
      say(table(["plugin", "empty", "95% full", "ratio"], fillRows));
    }

    if (want("d")) {
      const m = await mark();
      let dVariants = all;
      if (etcdData === "both") {
        tmpfsEtcd = await startEtcd({ dataDir: etcdParent("tmpfs") });
        dVariants = [...all, ...etcdVariants(tmpfsEtcd, agent, ", data on tmpfs")];
      }
      const d = await scenarioD(dVariants);
      say(`\n### (d) Single ADD, one at a time, on a /16 (variants in turn; etcd's data on ${mainData}${etcdData === "both" ? ", and on tmpfs where the label says so" : ""})\n`);
      say(table(["plugin", "median", "p99", "vs host-local", "vs whereabouts", "peak RSS (plugin process)"], d.rows));
      const peak = agent?.peakRssKiB();
      if (peak !== undefined) say(`\nThe agent's own peak RSS so far: ${(peak / 1024).toFixed(1)} MiB.`);
      const r = roles(all);
      if (r.fileAgent && r.hostLocal) target(`(d) ${r.fileAgent.label} / host-local`, d.ratio(r.fileAgent, r.hostLocal), "<=", 1.5);
      if (r.etcdAgent && r.hostLocal) target(`(d) ${r.etcdAgent.label} / host-local`, d.ratio(r.etcdAgent, r.hostLocal), "<=", 1.7);
      fasterThanWhereabouts("(d)", all, d.ratio);
      if (r.whereabouts && r.etcdAgent) target(`(d) whereabouts / ${r.etcdAgent.label}`, d.ratio(r.whereabouts, r.etcdAgent), ">=", 2);

      const costVariants = all.filter((v) => v.store === "etcd");
      say(`\n### (d) etcd's work per call (${quick ? 10 : 30} calls of one variant, one at a time, from etcd's /metrics)\n`);
      say(table(["plugin", "verb", "gRPC requests", "by method", "bytes to etcd", "bytes from etcd"], await etcdCost(costVariants, etcd.endpoint)));
      say("\nkube-ipam talks to etcd's v3 JSON gateway, which calls etcd's gRPC services inside etcd: its requests and bytes are counted there (gRPC bytes, not the JSON on the wire). Streams (whereabouts' lease keep-alive) count when they close.");
      await checkAgent(m);
      await tmpfsEtcd?.stop();
      tmpfsEtcd = undefined;
    }

    if (want("f")) {
      const m = await mark();
      const f = await scenarioF(all, etcd.endpoint);
      say(`\n### (f) One ADD at 0, 50 and 95% fill of a pool of exactly ${f.size.toLocaleString("en")} addresses (median of ${f.samples}, each from a new node name, then DEL)\n`);
      say(table(["plugin", "empty", "50% full", "95% full", "95% / empty", "95% / empty pool (paired)", "filling to 95%", "etcd bytes per ADD+DEL at 95% (to / from etcd)"], f.rows));
      if (WHEREABOUTS && whereaboutsFill === "seed") {
        say("\nwhereabouts' pool is filled by writing its range's value as whereabouts writes it (checked: its next ADD takes the next address); through the plugin, filling 3,891 takes about 4.5 minutes (`--whereabouts-fill plugin`).");
      }
      await checkAgent(m);
    }

    if (want("real")) {
      real = await startRealistic(mainData);
      // This scenario's agent has its own identity on the API stand-in, as the DaemonSet's has: its pod cache
      // reads through it (without one the agent GETs each ADD's pod, as the plugin does).
      const own = agent ? await startAgent(KUBE_IPAM.binary, join(work, "agent-real"), real.api.writeKubeconfig(join(work, "agent-kube"), "token")) : undefined;
      const realAgent = own && "agent" in own ? own.agent : undefined;
      if (own && "skipped" in own) say(`Note: the agent variant of (real) is skipped: ${own.skipped}`);
      const m = await agentMark(realAgent);
      const variants = realVariants(real, realAgent);
      say(`\n### (real) The realistic configuration: etcd with mutual TLS, a kubeconfig (each ADD looks its pod up), one ADD at a time on a /16\n`);
      const cache = async () => ({ hit: (await realAgent?.metric('kube_ipam_pod_cache_lookups_total{result="hit"}')) ?? 0, miss: (await realAgent?.metric('kube_ipam_pod_cache_lookups_total{result="miss"}')) ?? 0 });
      const before = await cache();
      say(table(["plugin", "median", "p99", "vs host-local", "vs whereabouts", "API requests per ADD"], await scenarioReal(variants, real)));
      const after = await cache();
      if (realAgent) say(`\nThe agent's pod cache: ${after.hit - before.hit} hits, ${after.miss - before.miss} misses (a miss reads the pod with a GET). One node, node-0, for every variant.`);
      const note = await agentNote(realAgent, m);
      if (note) say(note);
      await realAgent?.stop();
      await stopRealistic(real);
      real = undefined;
    }

    if (want("e")) {
      say("\n### (e) Binary and start-up (CNI VERSION, median)\n");
      say(table(["plugin", "binary size", "start-up"], await scenarioE()));
    }

    if (agent && agentCalls > 0) say(`\nThe agent served ${await agent.served()} requests; the agent variants made ${agentCalls} calls (checked after each scenario).`);
    if (targets.length) {
      say("\n### Targets (ratios within this run)\n");
      say(table(["ratio", "measured", "target", ""], targets.map((t) => [t.what, x(t.ratio), `${t.op} ${t.limit}x`, met(t) ? "met" : "NOT MET"])));
    }
    if (!want("curve")) return;

    const curve = await throughputCurve(base);
    const colors = ["#555555", "#1f77b4", "#d62728"];
    const throughputSvg = lineChart(curve.map((s, i) => ({ ...s, color: colors[i]! })), {
      title: "ADD throughput against concurrency", xLabel: "concurrent plugin processes", yLabel: "ADDs per second",
    });
    const fillSvg = lineChart(fillSeries.map((s, i) => ({ ...s, color: colors[i + 1]! })), {
      title: "Cost of one ADD against pool fill (/22)", xLabel: "pool fill (%)", yLabel: "ms per ADD (median)",
    });
    say("\n### Throughput against concurrency (ADDs/s)\n");
    say(table(["plugin", ...curve[0]!.points.map((p) => `c=${p[0]}`)], curve.map((s) => [s.name, ...s.points.map((p) => p[1].toFixed(0))])));

    if (write) {
      writeFileSync(join(ROOT, "docs/bench-throughput.svg"), throughputSvg);
      writeFileSync(join(ROOT, "docs/bench-fill.svg"), fillSvg);
      writeFileSync(join(ROOT, "docs/bench-results.md"), `${out.join("\n")}\n`);
      console.log("\nWrote docs/bench-results.md, docs/bench-throughput.svg, docs/bench-fill.svg");
    }
  } finally {
    await agent?.stop();
    await cluster?.stop();
    await tmpfsEtcd?.stop();
    await etcd?.stop();
    if (real) await stopRealistic(real);
    rmSync(work, { recursive: true, force: true });
  }
}

async function stopRealistic(real: Realistic): Promise<void> {
  real.api.stop();
  await real.etcd.stop();
  rmSync(real.pki.dir, { recursive: true, force: true });
}

/** A second etcd, with mutual TLS, and the Kubernetes API stand-in, both with the test PKI. */
async function startRealistic(where: "disk" | "tmpfs"): Promise<Realistic> {
  const pki = makeTestPki();
  const etcd = await startEtcd({ pki, dataDir: etcdParent(where) });
  return { etcd, pki, api: startKubeApi(pki) };
}

await main();
