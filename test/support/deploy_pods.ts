// deploy/'s workloads run by podman as kubelet would run them on one node: the manifests parsed, their
// Secrets and ConfigMap stood in for by test material (an etcd with mutual TLS, a real kube-apiserver and
// its ServiceAccount kube-system/kube-ipam's token), init containers run to completion, then the containers. test/support/pod_spec.ts does the
// translation.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTestPki, type TestPki } from "./certs.ts";
import { startEtcd, type EtcdServer } from "./etcd.ts";
import { eventually } from "./eventually.ts";
import { type KubeApiServer, startKubeApiServer } from "./kube_apiserver.ts";
import { containerArgv, materializeVolumes, type PodContext } from "./pod_spec.ts";
import type { Podman } from "./podman.ts";

type Any = any;

export const DEPLOY = resolve(import.meta.dir, "../../deploy");
export const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")).version;
/** The image both workload manifests name. */
export const MANIFEST_IMAGE = `kube-ipam:${VERSION}`;

/** The one document of `kind` in deploy/`file` (Bun.YAML.parse: an array when there are several). */
export function manifest(file: string, kind: string): Any {
  const parsed = Bun.YAML.parse(readFileSync(join(DEPLOY, file), "utf8"));
  const found = (Array.isArray(parsed) ? parsed : [parsed]).filter((d: Any) => d?.kind === kind);
  if (found.length !== 1) throw new Error(`deploy/${file}: expected one ${kind}, found ${found.length}`);
  return found[0];
}

/** What a cluster would provide: etcd (mutual TLS), the API server, and the objects deploy/ refers to. */
export interface ClusterStandIns {
  readonly pki: TestPki;
  readonly etcd: EtcdServer;
  readonly api: KubeApiServer;
  /** The ConfigMap's network config, edited as an operator would: etcdURL, subnet and range. */
  readonly networkConf: Any;
  readonly secrets: PodContext["secrets"];
  readonly configMaps: PodContext["configMaps"];
  /** KUBERNETES_SERVICE_HOST/PORT as kubelet sets them: the API server on loopback (host network). */
  readonly serviceEnv: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

const CONF_KEY = "10-kube-ipam.conf";

/** Starts the stand-ins; the network config gets `subnet` (a /24) with the ConfigMap's range shape. */
export async function startClusterStandIns(subnet: string): Promise<ClusterStandIns> {
  const pki = makeTestPki();
  const [etcd, api] = await Promise.all([startEtcd({ pki }), startKubeApiServer()]);
  const configMap = manifest("configmap.yaml", "ConfigMap");
  const conf = JSON.parse(configMap.data[CONF_KEY]);
  const net = subnet.replace(/\.0\/24$/, "");
  conf.ipam.etcdConfig.etcdURL = etcd.endpoint;
  Object.assign(conf.ipam, { subnet, rangeStart: `${net}.10`, rangeEnd: `${net}.200`, gateway: `${net}.1` });
  const pem = (path: string) => readFileSync(path, "utf8");
  return {
    pki,
    etcd,
    api,
    networkConf: conf,
    secrets: {
      "kube-ipam-etcd-tls": { "ca.crt": pem(pki.ca.cert), "tls.crt": pem(pki.client.cert), "tls.key": pem(pki.client.key) },
      "kube-ipam-plugin-token": { token: api.token, "ca.crt": pem(api.pki.ca.cert) },
    },
    configMaps: { [configMap.metadata.name]: { [CONF_KEY]: JSON.stringify(conf, null, 2) } },
    serviceEnv: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: new URL(api.url).port },
    async stop() {
      await api.stop();
      await etcd.stop();
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
}

export interface RunningPod {
  readonly ctx: PodContext;
  /** The podman name of one of its containers. */
  containerName(name: string): string;
  /** What the container wrote (podman logs). */
  logs(name: string): Promise<string>;
}

/**
 * Runs a pod spec: its volumes made under `dir`, each init container to completion (an error with its
 * log when it fails, as the pod would stay in Init:Error), then its containers, detached.
 */
export async function runPod(podman: Podman, podSpec: Any, ctx: PodContext,
  hostPaths: Readonly<Record<string, string>>, dir: string): Promise<RunningPod> {
  mkdirSync(dir, { recursive: true });
  const volumes = materializeVolumes(podSpec, ctx, hostPaths, dir);
  const name = (c: string) => `${ctx.podName}-${c}`;
  const logs = async (c: string) => {
    const r = await podman.run(["logs", name(c)]);
    return r.stdout + r.stderr;
  };
  for (const init of podSpec.initContainers ?? []) {
    await podman.ok(containerArgv(podSpec, init, ctx, volumes));
    const code = Number((await podman.ok(["wait", name(init.name)])).trim());
    if (code !== 0) throw new Error(`init container "${init.name}" exited ${code}:\n${await logs(init.name)}`);
  }
  for (const c of podSpec.containers) await podman.ok(containerArgv(podSpec, c, ctx, volumes));
  return { ctx, containerName: name, logs };
}

/**
 * Polls `url` (a probe's) until it answers 200, as kubelet's readiness probe would; bounded. On failure
 * the error ends with `diagnose()` (the container's log).
 */
export async function waitReady(url: string, what: string, diagnose: () => Promise<string>, withinMs = 30_000): Promise<void> {
  try {
    await eventually(`${what}: ${url}`, async () => {
      try {
        return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
      } catch (e) {
        return String(e);
      }
    }, (s) => s === 200, { withinMs, everyMs: 100 });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await diagnose()}`);
  }
}
