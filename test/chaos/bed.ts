// The chaos bed's processes: a 3-member etcd cluster (Debian's etcd, data on tmpfs), one member per
// namespace; kube-apiserver in the root namespace, reachable from the bed at API_IP; on each host its node
// agent, with the agent's own identity; two controller replicas, each in its own namespace. Every process
// runs under setpriv --pdeathsig KILL, so a killed test leaves none behind, and logs to a file in the bed's
// directory, kept when a run fails.
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { leaderKey } from "../support/controller.ts";
import { memberStatus } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { startKubeApiServer, type KubeApiServer } from "../support/kube_apiserver.ts";
import { BINARY } from "../support/plugin.ts";
import { inNetns } from "./netns.ts";
import {
  API_IP, type BedNode, clientUrl, CONTROLLERS, ETCD_URLS, HOSTS, MEMBERS, nodeNamed, peerUrl,
} from "./topology.ts";

const ETCD = process.env.ETCD_BIN ?? "etcd";
const SETPRIV = Bun.which("setpriv");

export const NETWORK = "chaos";
export const PREFIX = "/kube-ipam";
export const POD_NAMESPACE = "chaos";
export const POD_SUBNET = "10.214.0.0/24";
/** Addresses pods fix by annotation, outside the dynamic range: the workload's pods compete for them. */
export const FIXED = ["10.214.0.200", "10.214.0.201", "10.214.0.202"] as const;
/** In the dynamic range, reserved before the run: no pod may ever get it. */
export const RESERVED = "10.214.0.30";
export const BUDGET_SECONDS = 6;

export interface BedProcess {
  readonly name: string;
  readonly proc: Subprocess;
  readonly log: string;
}

export interface Bed {
  readonly dir: string;
  readonly api: KubeApiServer;
  readonly members: ReadonlyMap<string, BedProcess>;
  readonly agents: ReadonlyMap<string, BedProcess>;
  readonly controllers: ReadonlyMap<string, BedProcess>;
  /** The network config a host's plugin reads on stdin (and its CLI reads with --conf). */
  conf(host: string): string;
  confPath(host: string): string;
  /** A kubeconfig with the controller's identity, for gc. */
  readonly controllerKubeconfig: string;
  /** The member that leads etcd now, as the members say (undefined during an election or when none answers). */
  etcdLeader(): Promise<BedNode | undefined>;
  /** The controller whose identity the leader key holds now. */
  controllerLeader(): Promise<BedNode | undefined>;
  stop(): Promise<void>;
}

function spawnIn(node: BedNode | undefined, name: string, argv: readonly string[], log: string, env: Record<string, string> = {}): BedProcess {
  const fd = openSync(log, "a");
  try {
    const wrap = SETPRIV ? [SETPRIV, "--pdeathsig", "KILL", "--"] : [];
    const proc = Bun.spawn([...wrap, ...(node ? inNetns(node.netns, argv) : argv)], {
      stdin: "ignore", stdout: fd, stderr: fd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    });
    return { name, proc, log };
  } finally {
    closeSync(fd);
  }
}

/** A file's text includes `text` (a process's log line that it is ready), polled until a generous deadline. */
const logged = (what: string, log: string, text: string) =>
  eventually(what, () => readFileSync(log, "utf8").includes(text), (v) => v, { withinMs: 30_000, everyMs: 50 });

export async function startBed(dir: string): Promise<Bed> {
  mkdirSync(dir, { recursive: true });
  const started: BedProcess[] = [];
  let api: KubeApiServer | undefined;
  try {
    const cluster = MEMBERS.map((m) => `${m.name}=${peerUrl(m)}`).join(",");
    const members = new Map<string, BedProcess>();
    const dataRoot = join("/dev/shm", `kube-ipam-chaos-${process.pid}`);
    for (const m of MEMBERS) {
      const data = join(dataRoot, m.name);
      mkdirSync(data, { recursive: true });
      const p = spawnIn(m, m.name, [ETCD, "--name", m.name, "--data-dir", data,
        "--listen-client-urls", clientUrl(m), "--advertise-client-urls", clientUrl(m),
        "--listen-peer-urls", peerUrl(m), "--initial-advertise-peer-urls", peerUrl(m),
        "--initial-cluster", cluster, "--initial-cluster-token", `kic-${process.pid}`, "--initial-cluster-state", "new",
        "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap", "--log-level", "warn"], join(dir, `${m.name}.log`));
      members.set(m.name, p);
      started.push(p);
    }
    const [apiServer] = await Promise.all([
      startKubeApiServer({ reachableAt: API_IP }),
      ...MEMBERS.map((m) => eventually(`etcd ${m.name} healthy`, async () => {
        const res = await fetch(`${clientUrl(m)}/health`, { signal: AbortSignal.timeout(500) }).catch(() => undefined);
        return res?.ok === true && ((await res.json()) as { health?: string }).health === "true";
      }, (v) => v, { withinMs: 30_000, everyMs: 50 })),
    ]);
    api = apiServer;
    const server = `https://${API_IP}:${new URL(api.url).port}`;
    const kubeconfig = (identity: "plugin" | "agent" | "controller") =>
      api!.writeKubeconfig(join(dir, "kube"), "token", { identity, server, file: `${identity}.kubeconfig` });
    const pluginKubeconfig = kubeconfig("plugin");
    const agentKubeconfig = kubeconfig("agent");
    const controllerKubeconfig = kubeconfig("controller");
    await api.ensureNamespace(POD_NAMESPACE);

    const confs = new Map<string, string>();
    const confPaths = new Map<string, string>();
    for (const n of [...HOSTS, ...CONTROLLERS]) {
      mkdirSync(join(dir, n.name), { recursive: true, mode: 0o700 });
      const conf = JSON.stringify({
        cniVersion: "1.0.0",
        name: NETWORK,
        type: "bridge",
        ipam: {
          type: "kube-ipam",
          ranges: [[{ subnet: POD_SUBNET, rangeStart: "10.214.0.10", rangeEnd: "10.214.0.49", gateway: "10.214.0.1" }]],
          etcdConfig: { etcdURL: ETCD_URLS, etcdPrefix: PREFIX },
          kubeConfig: pluginKubeconfig,
          nodeName: n.name,
          timeoutSeconds: BUDGET_SECONDS,
          agentSocket: join(dir, n.name, "agent.sock"),
          logFile: join(dir, n.name, "plugin.log"),
          logLevel: "info",
        },
      });
      confs.set(n.name, conf);
      const path = join(dir, n.name, "net.conf");
      writeFileSync(path, conf);
      confPaths.set(n.name, path);
    }

    const agents = new Map<string, BedProcess>();
    for (const h of HOSTS) {
      const log = join(dir, `${h.name}-agent.log`);
      const p = spawnIn(h, `${h.name}-agent`, [BINARY, "agent", "--socket", join(dir, h.name, "agent.sock"), "--kubeconfig", agentKubeconfig],
        log, { KUBE_IPAM_NODE_NAME: h.name });
      agents.set(h.name, p);
      started.push(p);
    }
    const controllers = new Map<string, BedProcess>();
    for (const c of CONTROLLERS) {
      const log = join(dir, `${c.name}-controller.log`);
      const p = spawnIn(c, c.name, [BINARY, "controller", "--conf", confPaths.get(c.name)!, "--kubeconfig", controllerKubeconfig,
        "--metrics-addr", `${c.ip}:9153`, "--auth", "none", "--gc-interval", "2s", "--grace", "4s", "--lease-ttl", "3s",
        "--max-release", "100%"], log, { POD_NAME: c.name });
      controllers.set(c.name, p);
      started.push(p);
    }
    await Promise.all([
      ...[...agents.values()].map((a) => logged(`${a.name} started`, a.log, '"agent started"')),
      ...[...controllers.values()].map((c) => logged(`controller ${c.name} started`, c.log, '"controller started"')),
    ]);

    const bed: Bed = {
      dir, api, members, agents, controllers, controllerKubeconfig,
      conf: (host) => confs.get(host)!,
      confPath: (host) => confPaths.get(host)!,
      async etcdLeader() {
        for (const m of MEMBERS) {
          const s = await memberStatus(clientUrl(m));
          if (s && s.leader !== "0" && s.leader === s.member) return m;
        }
        return undefined;
      },
      async controllerLeader() {
        for (const m of MEMBERS) {
          const held = await leaderKey(clientUrl(m), PREFIX, 500).then((k) => ({ k }), () => undefined);
          if (held) return held.k ? nodeNamed(held.k.identity.split("/")[0]!) : undefined;
        }
        return undefined;
      },
      async stop() {
        await stopAll(started);
        await api?.stop();
        Bun.spawnSync(["rm", "-rf", dataRoot]);
      },
    };
    return bed;
  } catch (e) {
    await stopAll(started);
    await api?.stop();
    throw e;
  }
}

async function stopAll(procs: readonly BedProcess[]): Promise<void> {
  for (const p of procs) {
    p.proc.kill("SIGCONT");
    p.proc.kill("SIGKILL");
  }
  await Promise.all(procs.map((p) => p.proc.exited));
}
