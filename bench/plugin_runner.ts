// Runs an IPAM plugin binary the way a container runtime does, and times it: wall time of the whole
// process (start-up included, since the runtime pays it for every pod) and, on request, peak RSS.
import { existsSync } from "node:fs";

export interface Plugin {
  readonly name: string;
  readonly binary: string;
}

export interface Call {
  readonly command: "ADD" | "DEL" | "VERSION";
  readonly containerID: string;
  readonly node?: string;
}

export interface Outcome {
  readonly ok: boolean;
  readonly ms: number;
  readonly address?: string;
  readonly stdout: string;
  /** Peak resident memory in KiB, when measured. */
  readonly maxRssKiB?: number;
}

const GNU_TIME = "/usr/bin/time";

export function canMeasureMemory(): boolean {
  return existsSync(GNU_TIME);
}

/** The UID of the pod a bench call names (the realistic scenario registers pods with it). */
export function benchPodUID(containerID: string): string {
  return `uid-${containerID}`;
}

export async function call(plugin: Plugin, conf: string, c: Call, opts: { memory?: boolean } = {}): Promise<Outcome> {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CNI_COMMAND: c.command,
    CNI_CONTAINERID: c.containerID,
    CNI_NETNS: `/var/run/netns/${c.containerID}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
    // As containerd and CRI-O pass them; the UID lets the agent answer the pod from its cache.
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${c.containerID};K8S_POD_UID=${benchPodUID(c.containerID)}`,
    ...(c.node ? { KUBE_IPAM_NODE_NAME: c.node } : {}),
  };
  const argv = opts.memory ? [GNU_TIME, "-f", "%M", plugin.binary] : [plugin.binary];
  const started = performance.now();
  const proc = Bun.spawn(argv, { env, stdin: new TextEncoder().encode(conf), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - started;
  let address: string | undefined;
  if (code === 0 && c.command === "ADD") {
    const r = JSON.parse(stdout) as { ips?: { address: string }[]; ip4?: { ip: string } };
    address = (r.ips?.[0]?.address ?? r.ip4?.ip)?.split("/")[0];
  }
  const rss = opts.memory ? Number(stderr.trim().split("\n").pop()) : undefined;
  return { ok: code === 0, ms, address, stdout, maxRssKiB: Number.isFinite(rss) ? rss : undefined };
}

/** Runs `fn` over `items` with at most `limit` in flight; returns results and total wall time. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<{ results: R[]; ms: number }> {
  const results = new Array<R>(items.length);
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  }));
  return { results, ms: performance.now() - started };
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
