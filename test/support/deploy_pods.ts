// deploy/'s workloads run by podman as kubelet would run them on one node: the manifests parsed, their
// Secrets and ConfigMap stood in for by test material (an etcd with mutual TLS, a real kube-apiserver, the
// plugin's token in the Secret kube-ipam-plugin-token, and each pod's own service account token, the one of
// the ServiceAccount its spec names), init containers run to completion, then the containers.
// test/support/pod_spec.ts does the translation.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTestPki, type TestPki } from "./certs.ts";
import { startEtcd, type EtcdServer } from "./etcd.ts";
import { eventually } from "./eventually.ts";
import { type Identity, type KubeApiServer, SERVICE_ACCOUNTS, startKubeApiServer } from "./kube_apiserver.ts";
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
  /**
   * The token kubelet would mount in a pod of `podSpec`: a token of its serviceAccountName, one of
   * deploy/rbac.yaml's accounts (another name is an error: no token stands for it), and the API's CA.
   */
  serviceAccount(podSpec: Any): NonNullable<PodContext["serviceAccount"]>;
  /** A token as Prometheus's: a ServiceAccount bound to deploy/rbac.yaml's kube-ipam-metrics-reader. */
  readonly scraperToken: string;
  stop(): Promise<void>;
}

// kubelet's probes do not verify the endpoint's certificate (made at start, self-signed): neither do these.
const UNVERIFIED = { rejectUnauthorized: false };

/** A probe's answer: its HTTP status, or the error as text. */
export async function probe(url: string): Promise<number | string> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000), tls: UNVERIFIED } as RequestInit)).status;
  } catch (e) {
    return String(e);
  }
}

/** `/metrics` at `url` scraped with `token`, as Prometheus does it; throws on any answer but 200. */
export async function scrape(url: string, token: string): Promise<string> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000), tls: UNVERIFIED } as RequestInit);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${text}`);
  return text;
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
  const scraperToken = await api.serviceAccountToken("monitoring", "prometheus", { clusterRole: "kube-ipam-metrics-reader", grants: "/metrics" });
  return {
    scraperToken,
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
    serviceAccount(podSpec) {
      const name: unknown = podSpec.serviceAccountName;
      const identity = (Object.keys(SERVICE_ACCOUNTS) as Identity[]).find((i) => SERVICE_ACCOUNTS[i] === name);
      if (!identity) throw new Error(`the pod spec's serviceAccountName "${String(name)}" is none of deploy/rbac.yaml's: no token stands for it`);
      return { token: api.tokens[identity], caCrt: pem(api.pki.ca.cert) };
    },
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
    await eventually(`${what}: ${url}`, () => probe(url), (s) => s === 200, { withinMs, everyMs: 100 });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await diagnose()}`);
  }
}
