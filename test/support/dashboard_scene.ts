// A small cluster's address space for the dashboard tests, made the way a cluster makes it: pods in a real
// kube-apiserver (test/support/kube_apiserver.ts), ADD and DEL through the built plugin, a reservation through the CLI. Two
// networks share one etcd prefix (one store): "web", whose config the controller gets, and "db", which
// only the nodes know.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterFixture } from "./fixtures.ts";
import { makePod, makeStatefulSet } from "./kube_apiserver.ts";
import { runCli, runPlugin } from "./plugin.ts";

export interface NetFile {
  readonly name: string;
  readonly conf: Record<string, unknown>;
  readonly path: string;
}

export interface PodOptions {
  readonly namespace?: string;
  readonly node?: string;
  readonly annotations?: Record<string, string>;
  readonly statefulSet?: ReturnType<typeof makeStatefulSet>;
  /** No pod at all: a container the runtime added without Kubernetes arguments. */
  readonly noPod?: boolean;
}

export interface Scene {
  readonly prefix: string;
  readonly web: NetFile;
  readonly db: NetFile;
  /** Pod (or container) name -> its address in its network. */
  readonly ips: Map<string, string>;
  /** ADD of pod `name` in `net` (the pod is put in the API first); its address. */
  add(net: NetFile, name: string, opts?: PodOptions): Promise<string>;
  del(net: NetFile, name: string): Promise<void>;
  cli(...args: string[]): Promise<any>;
}

let scenes = 0;

export function netFile(env: ClusterFixture, prefix: string, name: string, ipam: Record<string, unknown>): NetFile {
  const conf = {
    cniVersion: "1.0.0",
    name,
    type: "macvlan",
    ipam: {
      type: "kube-ipam",
      etcdConfig: { etcdURL: env.etcd.endpoint, etcdPrefix: prefix },
      kubeConfig: env.kubeconfig,
      logFile: join(env.dir.path, "kube-ipam.log"),
      // The plugin runs every request itself: a node agent at the default socket (a real cluster on this
      // machine) would see none of these files.
      agentSocket: "",
      ...ipam,
    },
  };
  const path = join(env.dir.path, `${prefix.replace(/\W/g, "_")}-${name}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  return { name, conf, path };
}

/** The scene's store, empty: networks "web" (10.30.0.0/24, 10.30.0.240-250 excluded) and "db" (10.50.0.0/24). */
export function emptyScene(env: ClusterFixture): Scene {
  const prefix = `/ui-${process.pid}-${scenes++}`;
  const web = netFile(env, prefix, "web", { subnet: "10.30.0.0/24", exclude: ["10.30.0.240-10.30.0.250"] });
  const db = netFile(env, prefix, "db", { subnet: "10.50.0.0/24" });
  const ips = new Map<string, string>();
  return {
    prefix, web, db, ips,
    async add(net, name, opts = {}) {
      const namespace = opts.namespace ?? "shop";
      if (!opts.noPod) {
        await env.api.setPod(makePod({ namespace, name, nodeName: opts.node ?? "node-a", annotations: opts.annotations, ownerStatefulSet: opts.statefulSet }));
      }
      const r = await runPlugin(net.conf, {
        command: "ADD",
        containerID: `c-${name}`,
        args: opts.noPod ? undefined : `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
        env: { KUBE_IPAM_NODE_NAME: opts.node ?? "node-a" },
      });
      if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
      const ip = r.json.ips[0].address.split("/")[0] as string;
      ips.set(name, ip);
      return ip;
    },
    async del(net, name) {
      const r = await runPlugin(net.conf, { command: "DEL", containerID: `c-${name}` });
      if (r.exitCode !== 0) throw new Error(`DEL ${name} failed: ${r.stdout}`);
    },
    async cli(...args) {
      const out = await runCli(args);
      if (out.exitCode !== 0) throw new Error(`kube-ipam ${args.join(" ")} failed: ${out.stderr}`);
      return out.json ?? out.stdout;
    },
  };
}

/**
 * The scene with addresses: six web pods on three nodes, a fixed address, a StatefulSet's sticky addresses
 * (one parked), a container without a pod, two database pods, and the reservation "lb".
 */
export async function buildScene(env: ClusterFixture): Promise<Scene> {
  const s = emptyScene(env);
  const nodes = ["node-a", "node-b", "node-c"];
  for (let i = 0; i < 6; i++) await s.add(s.web, `web-${i}`, { node: nodes[i % 3] });
  await s.add(s.web, "api-0", { node: "node-b", annotations: { "kube-ipam.ip": "10.30.0.100" } });
  const cache = await env.api.setStatefulSet(makeStatefulSet({ namespace: "shop", name: "cache", replicas: 2 }));
  await s.add(s.web, "cache-0", { node: "node-c", statefulSet: cache });
  await s.add(s.web, "cache-1", { node: "node-a", statefulSet: cache });
  await s.del(s.web, "cache-1"); // parked: kept for the pod name
  await s.add(s.web, "raw", { noPod: true, node: "node-b" });
  await s.add(s.db, "pg-0", { namespace: "data", node: "node-b" });
  await s.add(s.db, "pg-1", { namespace: "data", node: "node-c" });
  await s.cli("reserve", "lb", "10.30.0.20-10.30.0.29", "--conf", s.web.path);
  return s;
}
