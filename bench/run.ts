// `npm run bench`: kube-ipam side by side with host-local (Go, node-local files, /usr/lib/cni), run
// the way a container runtime runs them, in the same run on the same machine. Prints the tables,
// and with --write also docs/benchmarks.md and the charts under docs/.
//   bun bench/run.ts [--write] [--quick] [--only a,b,c,d,e,curve]
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type EtcdCluster, type EtcdServer, startEtcd, startEtcdCluster } from "../test/support/etcd.ts";
import { call, canMeasureMemory, median, type Outcome, percentile, type Plugin, pool } from "./plugin_runner.ts";
import { lineChart } from "./svg.ts";

const ROOT = resolve(import.meta.dir, "..");
const HOST_LOCAL: Plugin = { name: "host-local", binary: "/usr/lib/cni/host-local" };
const KUBE_IPAM: Plugin = { name: "kube-ipam", binary: join(ROOT, "dist/kube-ipam") };
const quick = process.argv.includes("--quick");
const write = process.argv.includes("--write");
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? new Set(process.argv[onlyArg + 1]!.split(",")) : undefined;
const want = (scenario: string) => !only || only.has(scenario);
const work = mkdtempSync(join(tmpdir(), "kube-ipam-bench-"));
let seq = 0;

interface Range {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
}

type Variant = { label: string; plugin: Plugin; conf: (range: Range) => string; nodes: number };

function hostLocal(range: Range): string {
  const name = `hl${seq++}`;
  return JSON.stringify({ cniVersion: "1.0.0", name, type: "bridge", ipam: { type: "host-local", ranges: [[range]], dataDir: join(work, name) } });
}

function kubeFile(range: Range): string {
  const name = `kf${seq++}`;
  return JSON.stringify({
    cniVersion: "1.0.0", name, type: "bridge",
    ipam: { type: "kube-ipam", ...range, dataDir: join(work, name), logFile: join(work, "kube-ipam.log") },
  });
}

function kubeEtcd(endpoints: readonly string[]) {
  return (range: Range): string => {
    const name = `ke${seq++}`;
    return JSON.stringify({
      cniVersion: "1.0.0", name, type: "bridge",
      ipam: { type: "kube-ipam", ...range, etcdConfig: { etcdURL: endpoints.join(","), etcdPrefix: `/bench-${process.pid}` }, logFile: join(work, "kube-ipam.log") },
    });
  };
}

const node = (v: Variant, i: number) => (v.nodes > 0 ? `node-${i % v.nodes}` : undefined);

/** `count` ADDs at `concurrency` on a fresh pool; fails loudly on an error or a duplicate. */
async function addMany(v: Variant, range: Range, count: number, concurrency: number, conf = v.conf(range)) {
  const ids = Array.from({ length: count }, (_, i) => `c${seq}-${i}`);
  const { results, ms } = await pool(ids, concurrency, (id, i) => call(v.plugin, conf, { command: "ADD", containerID: id, node: node(v, i) }));
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`${v.label}: ${failed.length} ADDs failed: ${failed[0]!.stdout}`);
  const distinct = new Set(results.map((r) => r.address)).size;
  if (distinct !== count) throw new Error(`${v.label}: ${count - distinct} duplicate addresses`);
  return { ms, conf, ids };
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
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
  const base = times.get(variants[0]!.label)!;
  const ratios = new Map(variants.map((v) => [v.label, median(times.get(v.label)!.map((ms, r) => ms / base[r]!))]));
  const rows = variants.map((v) => {
    const m = median(times.get(v.label)!);
    return [v.label, fmt(m), `${(300 / (m / 1000)).toFixed(0)}/s`, `${ratios.get(v.label)!.toFixed(2)}x`];
  });
  return { rows, ratios: Object.fromEntries(ratios) };
}

async function scenarioB(cluster: EtcdCluster) {
  const v: Variant = { label: "kube-ipam, 3-member etcd", plugin: KUBE_IPAM, conf: kubeEtcd(cluster.endpoints), nodes: 10 };
  // 10.60.0.10 .. 10.60.3.241: exactly 1000 addresses.
  const range: Range = { subnet: "10.60.0.0/22", rangeStart: "10.60.0.10", rangeEnd: "10.60.3.241" };
  const n = quick ? 200 : 1000;
  const r = quick ? { ...range, rangeEnd: "10.60.0.209" } : range;
  const first = await addMany(v, r, n, 20);
  const started = performance.now();
  const { results: dels } = await pool(first.ids, 20, (id, i) => call(v.plugin, first.conf, { command: "DEL", containerID: id, node: node(v, i) }));
  const delMs = performance.now() - started;
  if (dels.some((d) => !d.ok)) throw new Error("DEL failed in scenario b");
  const second = await addMany(v, r, n, 20, first.conf);
  return [
    ["create all", `${n}`, fmt(first.ms), `${(n / (first.ms / 1000)).toFixed(0)}/s`, "0"],
    ["delete all", `${n}`, fmt(delMs), `${(n / (delMs / 1000)).toFixed(0)}/s`, "-"],
    ["create all again", `${n}`, fmt(second.ms), `${(n / (second.ms / 1000)).toFixed(0)}/s`, "0"],
  ];
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
  const probe = async (conf: string, pct: number) => {
    const id = `probe${seq++}`;
    const r = await call(v.plugin, conf, { command: "ADD", containerID: id, node: `probe-node-${seq}` });
    if (!r.ok) throw new Error(`${v.label}: probe ADD failed at ${pct}%: ${r.stdout}`);
    await call(v.plugin, conf, { command: "DEL", containerID: id });
    return r.ms;
  };
  let filled = 0;
  let last = { full: NaN, empty: NaN };
  for (const pct of [0, 25, 50, 75, 95]) {
    const target = Math.floor((size * pct) / 100);
    if (target > filled) {
      const ids = Array.from({ length: target - filled }, (_, i) => `fill${seq}-${filled + i}`);
      await pool(ids, 10, (id, i) => call(v.plugin, filling, { command: "ADD", containerID: id, node: `filler-${i % 10}` }));
      filled = target;
      seq++;
    }
    const full: number[] = [];
    const none: number[] = [];
    for (let i = 0; i < samples; i++) {
      full.push(await probe(filling, pct));
      none.push(await probe(empty, 0));
    }
    points.push([pct, median(full)]);
    last = { full: median(full), empty: median(none) };
  }
  return { points, empty: last.empty, full: last.full };
}

async function scenarioD(variants: Variant[]) {
  const n = quick ? 30 : 100;
  const memory = canMeasureMemory();
  const rows: string[][] = [];
  for (const v of variants) {
    const conf = v.conf({ subnet: "10.80.0.0/16" });
    const runs: Outcome[] = [];
    for (let i = 0; i < n; i++) runs.push(await call(v.plugin, conf, { command: "ADD", containerID: `lat${seq++}`, node: node(v, i) }, { memory: memory && i < 20 }));
    const ms = runs.map((r) => r.ms);
    const rss = runs.map((r) => r.maxRssKiB).filter((x): x is number => x !== undefined);
    rows.push([v.label, fmt(median(ms)), fmt(percentile(ms, 99)), rss.length ? `${(Math.max(...rss) / 1024).toFixed(1)} MiB` : "n/a"]);
  }
  return rows;
}

async function scenarioE() {
  const rows: string[][] = [];
  for (const p of [HOST_LOCAL, KUBE_IPAM]) {
    const ms: number[] = [];
    for (let i = 0; i < (quick ? 20 : 50); i++) ms.push((await call(p, '{"cniVersion":"1.0.0"}', { command: "VERSION", containerID: "v" })).ms);
    rows.push([p.name, `${(statSync(p.binary).size / 1024 / 1024).toFixed(1)} MiB`, fmt(median(ms))]);
  }
  return rows;
}

async function throughputCurve(variants: Variant[]) {
  const levels = quick ? [1, 5, 10] : [1, 2, 5, 10, 20];
  const n = quick ? 60 : 150;
  return Promise.resolve().then(async () => {
    // Variants in turn at each level, so that the machine's drift does not favour one of them.
    const series = variants.map((v) => ({ name: v.label, points: [] as [number, number][] }));
    for (const c of levels) {
      for (const [i, v] of variants.entries()) {
        const { ms } = await addMany(v, { subnet: "10.90.0.0/16" }, n, c);
        series[i]!.points.push([c, n / (ms / 1000)]);
      }
    }
    return series;
  });
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const etcd = Bun.spawnSync(["etcd", "--version"]).stdout.toString().split("\n")[0];
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  return `${cpus().length} cores (${cpu}), ${(require("node:os").totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, ${etcd}, Bun ${Bun.version}`;
}

async function main() {
  let etcd: EtcdServer | undefined;
  let cluster: EtcdCluster | undefined;
  try {
    etcd = await startEtcd();
    const variants: Variant[] = [
      { label: "host-local", plugin: HOST_LOCAL, conf: hostLocal, nodes: 0 },
      { label: "kube-ipam, embedded store", plugin: KUBE_IPAM, conf: kubeFile, nodes: 0 },
      { label: "kube-ipam, etcd, 10 nodes", plugin: KUBE_IPAM, conf: kubeEtcd([etcd.endpoint]), nodes: 10 },
    ];
    const out: string[] = [`Machine: ${machine()}`, `Run: ${new Date().toISOString()}${quick ? " (quick)" : ""}`, ""];
    const say = (s: string) => {
      out.push(s);
      console.log(s);
    };
    console.log(out.join("\n"));

    if (want("a")) {
      const a = await scenarioA(variants);
      say("### (a) 300 ADDs at concurrency 10 on a pool of exactly 300 addresses\n");
      say(table(["plugin", "total (median)", "throughput", "vs host-local (median of rounds)"], a.rows));
    }

    if (want("b")) {
      cluster = await startEtcdCluster(3);
      say(`\n### (b) ${quick ? 200 : 1000} pods, 10 nodes, as many addresses, 3-member etcd, concurrency 20\n`);
      say(table(["step", "pods", "time", "rate", "duplicates"], await scenarioB(cluster)));
      await cluster.stop();
      cluster = undefined;
    }

    const fillSeries = [];
    const fillRows: string[][] = [];
    if (want("c")) {
      for (const v of variants.slice(1)) {
        const c = await scenarioC(v);
        fillSeries.push({ name: v.label, points: c.points });
        fillRows.push([v.label, fmt(c.empty), fmt(c.full), `${(c.full / c.empty).toFixed(2)}x`]);
      }
      say("\n### (c) One ADD on a /22: empty and 95% full (median, each from a new node name, samples of both taken in turn)\n");
      say(table(["plugin", "empty", "95% full", "ratio"], fillRows));
    }
    if (want("d")) {
      say("\n### (d) Single ADD, one at a time, on a /16\n");
      say(table(["plugin", "median", "p99", "peak RSS"], await scenarioD(variants)));
    }
    if (want("e")) {
      say("\n### (e) Binary and start-up (CNI VERSION, median)\n");
      say(table(["plugin", "binary size", "start-up"], await scenarioE()));
    }
    if (!want("curve")) return;

    const curve = await throughputCurve(variants);
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
    await cluster?.stop();
    await etcd?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
