// The setup the kube_store_*.test.ts files share: one real kube-apiserver per file with kube-ipam's custom
// resources applied (deploy/kubernetes-datastore.yaml), the plugin's token kubeconfig (what the plugin runs
// with, and the node agent for the store), the controller's (what `kube-ipam controller` and gc run with:
// `asController`) and an operator's kubeconfig (the fixture's admin certificate, group system:masters: the
// identity `kube-ipam reserve` needs, since kube-ipam's own accounts only read reservations). Networks on
// the Kubernetes store share the API's cluster-wide objects, so each test
// uses a network name of its own; reservations are cluster-wide too, and `clearReservations` removes them.
//   const env = useKubeDatastore();
//   test("...", () => runPlugin(kubeNetConf(env, { subnet: "10.61.0.0/24" }), { command: "ADD", ... }));
import { afterAll, beforeAll } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type KubeApiServer, startKubeApiServer } from "./kube_apiserver.ts";
import { type CniReply, runCli, tempDir } from "./plugin.ts";

export interface KubeDatastore {
  readonly dir: ReturnType<typeof tempDir>;
  readonly api: KubeApiServer;
  /** The plugin's bearer token (ServiceAccount kube-system/kube-ipam-plugin, deploy/'s rights). */
  readonly kubeconfig: string;
  /** The controller's bearer token (ServiceAccount kube-system/kube-ipam-controller). */
  readonly controllerKubeconfig: string;
  /** The fixture's admin certificate: every right, and not in `api.requests`. */
  readonly adminKubeconfig: string;
}

export function useKubeDatastore(): KubeDatastore {
  const env = {} as { -readonly [K in keyof KubeDatastore]: KubeDatastore[K] };
  beforeAll(async () => {
    env.dir = tempDir("kube-ipam-kstore-");
    env.api = await startKubeApiServer();
    await env.api.installDatastore();
    env.kubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube"), "token");
    env.controllerKubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube-controller"), "token", { identity: "controller" });
    env.adminKubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube-admin"), "client-cert", { client: env.api.adminCert });
  }, 90_000);
  afterAll(async () => {
    await env.api?.stop();
    env.dir?.cleanup();
  });
  return env;
}

export interface KubeConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam: Record<string, any>;
  [field: string]: unknown;
}

let nets = 0;

/** A network on the Kubernetes store, named `name` (else a fresh name), running every request itself. */
export function kubeNetConf(env: KubeDatastore, ipam: Record<string, unknown> = {}, name = `knet${process.pid}x${nets++}`): KubeConf {
  return {
    cniVersion: "1.0.0",
    name,
    type: "macvlan",
    ipam: {
      type: "kube-ipam",
      datastore: "kubernetes",
      kubeConfig: env.kubeconfig,
      logFile: join(env.dir.path, "kube-ipam.log"),
      // The plugin runs each request itself: a node agent at the default socket would not see these files.
      agentSocket: "",
      ...ipam,
    },
  };
}

let files = 0;

/** Writes `conf` to a file of its own; returns the path. */
export function writeConf(env: KubeDatastore, conf: unknown): string {
  const path = join(env.dir.path, `conf-${files++}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  return path;
}

/**
 * `conf` as the controller (and gc) run with it: the same network, the controller's kubeconfig. In its pod
 * the controller has no host kubeconfig and uses its service account for the store and the cluster alike.
 */
export function asController(env: KubeDatastore, conf: KubeConf): KubeConf {
  return { ...conf, ipam: { ...conf.ipam, kubeConfig: env.controllerKubeconfig } };
}

/** `conf` as the operator runs the CLI with it: the same network, the admin's kubeconfig. */
export function asAdmin(env: KubeDatastore, conf: KubeConf): KubeConf {
  return { ...conf, ipam: { ...conf.ipam, kubeConfig: env.adminKubeconfig } };
}

export const ipOf = (r: { json: any }): string => String(r.json?.ips?.[0]?.address).split("/")[0]!;

/** The CLI's reply, which must have succeeded without a word on stderr. */
export async function cli(...args: string[]): Promise<CniReply> {
  const r = await runCli(args);
  if (r.exitCode !== 0 || r.stderr !== "") throw new Error(`kube-ipam ${args.join(" ")}: exit ${r.exitCode}: ${r.stderr}${r.stdout}`);
  return r;
}

/** `kube-ipam ls -o json` of `conf`. */
export async function ls(env: KubeDatastore, conf: unknown): Promise<any[]> {
  return (await cli("ls", "--conf", writeConf(env, conf), "-o", "json")).json;
}

/** The IPAllocation objects of `network`, as the admin reads them. */
export async function allocationObjects(api: KubeApiServer, network: string): Promise<any[]> {
  const r = await api.request("GET", `/apis/kube-ipam.io/v1alpha1/ipallocations?labelSelector=${encodeURIComponent(`kube-ipam.io/network=${network}`)}`);
  if (r.status !== 200) throw new Error(`list ipallocations: HTTP ${r.status}`);
  return r.body.items;
}

/** Deletes every IPReservation (they are cluster-wide: one test's would reach the next one's networks). */
export async function clearReservations(api: KubeApiServer): Promise<void> {
  const r = await api.request("DELETE", "/apis/kube-ipam.io/v1alpha1/ipreservations");
  if (r.status !== 200) throw new Error(`delete ipreservations: HTTP ${r.status}`);
}
