// The real single-node Kubernetes of scripts/cluster.sh, as the end-to-end tests use it:
//   const k8s = useRealCluster();            // up before the file (unless already up), down after it if it brought it up
//   await k8s.kubectl(["apply", "-f", "-"], { stdin: yaml });
//   const pods = await k8s.pods("app=web");   // name, phase, IP, node, as `kubectl get pods` shows them
// Everything goes through the cluster's real interfaces: kubectl of the built release with the admin
// kubeconfig, crictl against its containerd, kube-ipam's CLI with the config the DaemonSet installed.
import { afterAll, beforeAll } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { eventually } from "./eventually.ts";
import { BINARY } from "./plugin.ts";

export const CLUSTER_SCRIPT = resolve(import.meta.dir, "../../scripts/cluster.sh");
/** The cluster's fixed facts (scripts/cluster/settings.sh), read the way bash reads them. */
export const SETTINGS: Readonly<Record<string, string>> = readSettings();
/** The config the DaemonSet installed on the node: the CLI reads it as an operator would. */
export const NODE_CONFIG = "/etc/cni/net.d/10-kube-ipam.conf";

function readSettings(): Record<string, string> {
  const script = `. ${JSON.stringify(resolve(import.meta.dir, "../../scripts/cluster/settings.sh"))}; set -o posix; set`;
  const out = Bun.spawnSync(["bash", "-c", script], { stdout: "pipe" }).stdout.toString();
  const settings: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const m = line.match(/^([A-Z_0-9]+)=(.*)$/);
    if (m) settings[m[1]!] = m[2]!.replace(/^'(.*)'$/, "$1");
  }
  return settings;
}

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function run(argv: readonly string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const proc = Bun.spawn([...argv], {
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

async function ok(argv: readonly string[], opts: { stdin?: string } = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface PodRow {
  readonly name: string;
  readonly phase: string;
  readonly ip: string | undefined;
  readonly node: string | undefined;
  readonly uid: string;
  readonly deleting: boolean;
}

export interface Allocation {
  readonly ip: string;
  readonly containerID: string;
  readonly podNamespace?: string;
  readonly podName?: string;
  readonly kind: string;
}

export class RealCluster {
  binDir = "";
  kubeconfig = "";

  /** `kubectl ARGS` with the admin kubeconfig; whatever its exit status. */
  kubectl(args: readonly string[], opts: { stdin?: string } = {}): Promise<Run> {
    return run([`${this.binDir}/kubectl`, "--kubeconfig", this.kubeconfig, ...args], opts);
  }

  /** `kubectl ARGS`; throws with its output unless it exits 0; returns stdout. */
  kubectlOk(args: readonly string[], opts: { stdin?: string } = {}): Promise<string> {
    return ok([`${this.binDir}/kubectl`, "--kubeconfig", this.kubeconfig, ...args], opts);
  }

  apply(yaml: string, namespace = "default"): Promise<string> {
    return this.kubectlOk(["apply", "-n", namespace, "-f", "-"], { stdin: yaml });
  }

  async pods(selector: string, namespace = "default"): Promise<PodRow[]> {
    const list = JSON.parse(await this.kubectlOk(["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])) as {
      items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { phase: string; podIP?: string } }[];
    };
    return list.items.map((p) => ({
      name: p.metadata.name,
      uid: p.metadata.uid,
      phase: p.status.phase,
      ip: p.status.podIP,
      node: p.spec.nodeName,
      deleting: p.metadata.deletionTimestamp !== undefined,
    }));
  }

  /** Waits until exactly `count` pods match, all Running with an IP and none being deleted. */
  runningPods(selector: string, count: number, namespace = "default", withinMs = 90_000): Promise<PodRow[]> {
    return eventually(`${count} Running pods ${selector}`, () => this.pods(selector, namespace),
      (ps) => ps.length === count && ps.every((p) => p.phase === "Running" && p.ip !== undefined && !p.deleting),
      { withinMs, everyMs: 250 });
  }

  /** The events of one pod, oldest first, as "Reason: message". */
  async events(pod: string, namespace = "default"): Promise<string[]> {
    const out = await this.kubectlOk(["get", "events", "-n", namespace, "--field-selector", `involvedObject.name=${pod}`, "-o", "json"]);
    const items = (JSON.parse(out) as { items: { reason: string; message: string; lastTimestamp?: string }[] }).items;
    return items.map((e) => `${e.reason}: ${e.message}`);
  }

  /** What kube-ipam holds, read with its own CLI on the node's installed config. */
  async allocations(): Promise<Allocation[]> {
    return JSON.parse(await ok([BINARY, "ls", "--conf", NODE_CONFIG, "-o", "json"])) as Allocation[];
  }

  /** `kube-ipam ARGS --conf NODE_CONFIG` on the node. */
  ipam(args: readonly string[]): Promise<Run> {
    return run([BINARY, ...args, "--conf", NODE_CONFIG]);
  }

  /** `crictl ARGS` against the node's containerd. */
  crictl(args: readonly string[]): Promise<string> {
    return ok([`${this.binDir}/crictl`, "--runtime-endpoint", `unix://${SETTINGS.CONTAINERD_SOCKET}`, ...args]);
  }

  /** The IPv4 addresses on `ifName` inside a pod's network namespace, read from the host (nsenter). */
  async addressesInPodNetns(pod: PodRow, namespace = "default", ifName = "eth0"): Promise<string[]> {
    const sandboxes = JSON.parse(await this.crictl(["pods", "--name", `^${pod.name}$`, "--namespace", `^${namespace}$`, "--state", "ready", "-o", "json"])) as { items: { id: string }[] };
    if (sandboxes.items.length !== 1) throw new Error(`pod ${namespace}/${pod.name}: ${sandboxes.items.length} ready sandboxes`);
    const info = JSON.parse(await this.crictl(["inspectp", sandboxes.items[0]!.id])) as {
      info: { runtimeSpec: { linux: { namespaces: { type: string; path?: string }[] } } };
    };
    const netns = info.info.runtimeSpec.linux.namespaces.find((n) => n.type === "network")?.path;
    if (!netns) throw new Error(`pod ${namespace}/${pod.name}: no network namespace path in its sandbox`);
    const out = await ok(["nsenter", `--net=${netns}`, "ip", "-o", "-4", "addr", "show", "dev", ifName]);
    return [...out.matchAll(/inet (\S+)/g)].map((m) => m[1]!);
  }

  readonly #tokens = new Map<string, string>();

  /**
   * A token of ServiceAccount kube-system/NAME, bound to ClusterRole `role` (made on first use), as an operator
   * gives Prometheus or a person theirs: `kubectl create serviceaccount`, a binding, `kubectl create token`.
   */
  async tokenFor(name: string, role: string | undefined): Promise<string> {
    const have = this.#tokens.get(name);
    if (have) return have;
    await this.kubectl(["-n", "kube-system", "create", "serviceaccount", name]);
    if (role) await this.kubectl(["create", "clusterrolebinding", name, "--clusterrole", role, `--serviceaccount=kube-system:${name}`]);
    const token = (await this.kubectlOk(["-n", "kube-system", "create", "token", name, "--duration", "1h"])).trim();
    this.#tokens.set(name, token);
    return token;
  }

  /** GET a kube-ipam endpoint on the node (HTTPS, certificate made at start, not verified). */
  async endpoint(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`https://127.0.0.1:${port}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {}, tls: { rejectUnauthorized: false },
    } as RequestInit);
    return { status: res.status, body: await res.text() };
  }

  /** A metric's value from a kube-ipam endpoint on the node (the agent's 9154, the controller's 9153), scraped as Prometheus would. */
  async metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
    const scrape = await this.endpoint(port, "/metrics", await this.tokenFor("kube-ipam-test-scraper", "kube-ipam-metrics-reader"));
    if (scrape.status !== 200) throw new Error(`/metrics on port ${port}: HTTP ${scrape.status}: ${scrape.body}`);
    const text = scrape.body;
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split("\n")) {
      if (!line.startsWith(name)) continue;
      const m = line.match(/^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/);
      if (m && m[1] === name && want.every((w) => (m[2] ?? "").includes(w))) return Number(m[3]);
    }
    return 0;
  }

  script(args: readonly string[]): Promise<string> {
    return ok(["bash", CLUSTER_SCRIPT, ...args]);
  }
}

/**
 * The real cluster for one test file: brought up before its tests (reused when it is already up, as
 * after `npm run cluster -- up`) and taken down after them when this file brought it up.
 */
export function useRealCluster(): RealCluster {
  const cluster = new RealCluster();
  let owned = false;
  beforeAll(async () => {
    owned = !(await run(["bash", CLUSTER_SCRIPT, "status"])).stdout.startsWith("up");
    if (owned) await cluster.script(["up"]);
    cluster.binDir = readFileSync(`${SETTINGS.DIR}/bin-dir`, "utf8").trim();
    cluster.kubeconfig = `${SETTINGS.DIR}/admin.kubeconfig`;
  }, 600_000);
  afterAll(async () => {
    if (owned) await cluster.script(["down"]);
  }, 300_000);
  return cluster;
}
