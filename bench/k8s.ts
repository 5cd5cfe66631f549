// Bench scenario (k8s): pods of one Deployment scaled up at once on the real node of scripts/cluster.sh,
// the pod network's ipam being host-local, whereabouts (../shared/peers, on the cluster's etcd with mutual
// TLS) or kube-ipam through its node agent (as deploy/ installs it). For each: the time from `kubectl scale`
// until every pod is Running, and each sandbox's network setup time as containerd measures it
// (containerd_cri_sandbox_create_network_seconds: the whole CNI ADD, main plugin and ipam).
//   bun bench/k8s.ts [--pods 100] [--rounds 1] [--write]
// The cluster is brought up when it is not running, and left as it was found.
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { RealCluster, run, SETTINGS } from "../test/support/cluster.ts";

const ROOT = resolve(import.meta.dir, "..");
const WHEREABOUTS = resolve(ROOT, "../shared/peers/whereabouts");
const arg = (flag: string, fallback: number) => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PODS = arg("--pods", 100);
const ROUNDS = arg("--rounds", 1);
const BENCH_CONF = "/etc/cni/net.d/05-bench.conf"; // sorts before 10-kube-ipam.conf: containerd takes it
const HOST_LOCAL_DIR = "/var/lib/cni/kube-ipam-bench-host-local";
const S = SETTINGS;

interface Variant {
  readonly label: string;
  /** The network config to put before kube-ipam's; undefined: kube-ipam's own, as installed. */
  readonly conf?: object;
  readonly network: string;
}

const base = (name: string, cniVersion: string) => ({ cniVersion, name, type: "bridge", bridge: S.BRIDGE, isGateway: true, ipMasq: false });
const routes = [{ dst: S.POD_SUBNET }, { dst: S.SERVICE_CIDR }];
const pki = `${S.DIR}/pki`;
const variants: Variant[] = [
  {
    label: "host-local", network: "bench-host-local",
    conf: { ...base("bench-host-local", "1.0.0"), ipam: { type: "host-local", dataDir: HOST_LOCAL_DIR, routes,
      ranges: [[{ subnet: S.POD_SUBNET, rangeStart: S.RANGE_START, rangeEnd: S.RANGE_END, gateway: S.NODE_IP }]] } },
  },
  ...(existsSync(WHEREABOUTS) ? [{
    label: "whereabouts v0.5.4 (etcd, mTLS)", network: "bench-whereabouts",
    conf: { ...base("bench-whereabouts", "0.4.0"), ipam: { type: "whereabouts", datastore: "etcd", etcd_host: `127.0.0.1:${S.ETCD_PORT}`,
      etcd_cert_file: `${pki}/kube-ipam-etcd-client.crt`, etcd_key_file: `${pki}/kube-ipam-etcd-client.key`, etcd_ca_cert_file: `${pki}/ca.crt`,
      range: S.POD_SUBNET, range_start: S.RANGE_START, range_end: S.RANGE_END, gateway: S.NODE_IP, routes, log_level: "error" } },
  }] : []),
  { label: "kube-ipam via the agent (etcd, mTLS)", network: "k8snetwork" },
];

const k8s = new RealCluster();
const wasUp = (await run(["bash", resolve(ROOT, "scripts/cluster.sh"), "status"])).stdout.startsWith("up");
if (!wasUp) await k8s.script(["up"]);
k8s.binDir = readFileSync(`${S.DIR}/bin-dir`, "utf8").trim();
k8s.kubeconfig = `${S.DIR}/admin.kubeconfig`;

async function loadedNetwork(): Promise<string> {
  const info = JSON.parse(await k8s.crictl(["info"])) as { cniconfig?: { Networks?: { Config?: { Name?: string } }[] } };
  // Networks[0] is the loopback; the pod network follows.
  return info.cniconfig?.Networks?.map((n) => n.Config?.Name).filter((n) => n && n !== "cni-loopback")[0] ?? "";
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, everyMs = 250, withinMs = 600_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await Bun.sleep(everyMs);
  }
}

type Histogram = Map<number, number>; // upper bound (s) -> cumulative count
async function networkHistogram(): Promise<{ buckets: Histogram; sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${S.CONTAINERD_METRICS_PORT}/v1/metrics`)).text();
  const buckets: Histogram = new Map();
  let sum = 0, count = 0;
  for (const line of text.split("\n")) {
    const b = line.match(/^containerd_cri_sandbox_create_network_seconds_bucket\{le="([^"]+)"\} (\S+)$/);
    if (b) buckets.set(b[1] === "+Inf" ? Infinity : Number(b[1]), Number(b[2]));
    const s = line.match(/^containerd_cri_sandbox_create_network_seconds_(sum|count) (\S+)$/);
    if (s) s[1] === "sum" ? (sum = Number(s[2])) : (count = Number(s[2]));
  }
  return { buckets, sum, count };
}

/** The q-quantile of the observations between two readings, interpolated linearly inside its bucket. */
function quantile(before: Histogram, after: Histogram, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const rank = q * total;
  let lower = 0, below = 0;
  for (const le of bounds) {
    const n = (after.get(le) ?? 0) - (before.get(le) ?? 0);
    if (n >= rank) return le === Infinity ? lower : lower + (le - lower) * ((rank - below) / Math.max(n - below, 1));
    lower = le;
    below = n;
  }
  return lower;
}

function deployment(replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: bench, namespace: default }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: bench } }
  template:
    metadata: { labels: { app: bench } }
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{ name: main, image: ${S.WORKLOAD_IMAGE}, imagePullPolicy: IfNotPresent }]
`;
}

async function podsOf(): Promise<{ total: number; running: number }> {
  const out = await k8s.kubectlOk(["get", "pods", "-l", "app=bench", "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"]);
  const phases = out.split("\n").filter(Boolean);
  return { total: phases.length, running: phases.filter((p) => p === "Running").length };
}

interface Result { label: string; allRunningS: number; p50: number; p99: number; mean: number; sandboxes: number }

async function measure(v: Variant): Promise<Result> {
  if (v.conf) writeFileSync(BENCH_CONF, JSON.stringify(v.conf, null, 2));
  else rmSync(BENCH_CONF, { force: true });
  await until(`containerd loads ${v.network}`, loadedNetwork, (n) => n === v.network);
  await k8s.apply(deployment(0));
  const before = await networkHistogram();
  const started = performance.now();
  await k8s.kubectlOk(["scale", "deployment", "bench", "--replicas", String(PODS)]);
  await until(`${PODS} pods Running`, podsOf, (p) => p.running === PODS);
  const allRunningS = (performance.now() - started) / 1000;
  const after = await networkHistogram();
  await k8s.kubectlOk(["scale", "deployment", "bench", "--replicas", "0"]);
  await until("the pods gone", podsOf, (p) => p.total === 0);
  const sandboxes = after.count - before.count;
  return {
    label: v.label, allRunningS, sandboxes,
    p50: quantile(before.buckets, after.buckets, 0.5) * 1000,
    p99: quantile(before.buckets, after.buckets, 0.99) * 1000,
    mean: ((after.sum - before.sum) / Math.max(sandboxes, 1)) * 1000,
  };
}

const load = loadavg()[0]!.toFixed(2);
const startedAt = new Date().toISOString();
const whereaboutsBin = "/opt/cni/bin/whereabouts";
if (existsSync(WHEREABOUTS)) {
  copyFileSync(WHEREABOUTS, whereaboutsBin);
  chmodSync(whereaboutsBin, 0o755);
}
const results: Result[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Each round in another order, so that no plugin always runs first on a cold node.
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const r = await measure(v);
      results.push(r);
      console.error(`${r.label}: ${PODS} pods Running in ${r.allRunningS.toFixed(1)} s; network setup p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms`);
    }
  }
} finally {
  rmSync(BENCH_CONF, { force: true });
  await k8s.kubectl(["delete", "deployment", "bench", "--ignore-not-found", "--wait=true"]);
  rmSync(whereaboutsBin, { force: true });
  rmSync(HOST_LOCAL_DIR, { recursive: true, force: true });
  if (!wasUp) await k8s.script(["down"]);
}

const lines = [
  `### (k8s) ${PODS} pods of one Deployment scaled up at once on the real node`,
  "",
  `Run ${startedAt}, ${ROUNDS} round(s); ${cpus().length} cores, load ${load} at the start; the cluster's etcd (and so whereabouts' and`,
  `kube-ipam's state) on disk under ${S.DIR}/etcd. Network setup: containerd's containerd_cri_sandbox_create_network_seconds`,
  "(the whole CNI ADD of the bridge plugin and its ipam), p50 and p99 interpolated inside the histogram's buckets (5, 10, 25, 50,",
  "100, 250 ms, ...), mean exact.",
  "",
  "| ipam | all Running (s) | network setup p50 (ms) | p99 (ms) | mean (ms) | sandboxes |",
  "|---|---|---|---|---|---|",
  ...results.map((r) => `| ${r.label} | ${r.allRunningS.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.mean.toFixed(0)} | ${r.sandboxes} |`),
  "",
];
console.log(lines.join("\n"));
if (process.argv.includes("--write")) {
  const file = resolve(ROOT, "docs/bench-k8s.md");
  const head = existsSync(file) ? readFileSync(file, "utf8") : "# Bench (k8s): pods on a real node\n\n`bun bench/k8s.ts --write` appends a run here (docs/benchmarks.md says how to read it).\n\n";
  writeFileSync(file, `${head}${lines.join("\n")}\n`);
}
