// A real kube-apiserver (v1.34, built by scripts/cluster/build-components.sh) on its own etcd (3.6, built by
// scripts/cluster/build-etcd.sh), on random loopback ports, with real authentication and authorization:
//
//   const api = await startKubeApiServer();             // etcd + kube-apiserver, ready, RBAC of deploy/rbac.yaml applied
//   const pod = await api.setPod(makePod({ namespace: "shop", name: "web-0", nodeName: "node-1" }));  // the server's object
//   const kubeconfig = api.writeKubeconfig(dir, "token"); // the plugin's token (ServiceAccount kube-system/kube-ipam-plugin)
//   const gc = api.writeKubeconfig(dir2, "token", { identity: "controller" }); // the controller's
//   ... api.requests ...                                  // what the test identities asked, from the audit log
//   await api.stop();
//
// Identities: the fixture acts as an admin (a client certificate in group system:masters) whose requests are
// not recorded; the tested code acts as the component it is, each with a bound token from the TokenRequest
// API of its ServiceAccount in deploy/rbac.yaml (`api.tokens.plugin`, `.agent`, `.controller`; `api.token` is
// the plugin's), or as the client-certificate user "kube-ipam-client-cert", with the plugin's ClusterRole;
// `noRightsToken` is a user without any binding (RBAC denials). Each test runs a component with that
// component's identity, so that the suite shows each identity's rights suffice. No kubelet, scheduler or
// controller-manager runs: pods are API objects created with spec.nodeName set (or bound later through the
// binding subresource), their status written through the status subresource.
//
// Faults the real server cannot be made to show on demand (an answer held back, a 500, a cut watch stream,
// a TLS-level client-certificate demand) come from `faults()`: an HTTPS proxy in front of this server that
// passes everything through unchanged unless told otherwise (docs/testing.md).
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Server, Subprocess } from "bun";
import type { Pod, StatefulSet, Status } from "../../src/k8s/types.ts";
import { type CertPair, makeClientCert, makeTestPki, type TestPki } from "./certs.ts";
import { type EtcdServer, freePorts, startEtcd } from "./etcd.ts";
import { onExit } from "./exit_cleanup.ts";

export { makePod, type MakePodOptions, makeStatefulSet } from "./kube_objects.ts";

export type KubeconfigVariant = "token" | "client-cert" | "token-file-paths";

/** kube-ipam's components, each with its ServiceAccount in kube-system (deploy/rbac.yaml). */
export type Identity = "plugin" | "agent" | "controller";

export const SERVICE_ACCOUNTS: Readonly<Record<Identity, string>> = {
  plugin: "kube-ipam-plugin",
  agent: "kube-ipam-agent",
  controller: "kube-ipam-controller",
};

/** The user name the API gives each component's token (and names in its Forbidden messages). */
export const USERS: Readonly<Record<Identity, string>> = {
  plugin: `system:serviceaccount:kube-system:${SERVICE_ACCOUNTS.plugin}`,
  agent: `system:serviceaccount:kube-system:${SERVICE_ACCOUNTS.agent}`,
  controller: `system:serviceaccount:kube-system:${SERVICE_ACCOUNTS.controller}`,
};
export const PLUGIN_USER = USERS.plugin;

export interface WriteKubeconfigOptions {
  /** "data" embeds certificates and token; "paths" writes them beside the kubeconfig, referenced relatively. */
  readonly form?: "data" | "paths";
  /** Whose token to put in the kubeconfig; default "plugin". */
  readonly identity?: Identity;
  /** Token to put in the kubeconfig instead (e.g. `noRightsToken`, a wrong one). */
  readonly token?: string;
  /** Client certificate for "client-cert"; default the one of user "kube-ipam-client-cert". */
  readonly client?: CertPair;
  /** Default this server's url (e.g. `api.faults().url`). */
  readonly server?: string;
  /** File name inside dir; default "kubeconfig". */
  readonly file?: string;
}

const REPO = resolve(import.meta.dir, "../..");
const BUILD_SCRIPT = join(REPO, "scripts/cluster/build-components.sh");
const ETCD_BUILD_SCRIPT = join(REPO, "scripts/cluster/build-etcd.sh");
const READY_MS = 60_000;
const ATTEMPTS = 3;

/** The client-certificate user bound to deploy/rbac.yaml's ClusterRole of the plugin. */
export const CERT_USER = "kube-ipam-client-cert";
/** A user the server knows (static token) and RBAC grants nothing. */
export const NO_RIGHTS_USER = "no-rights";
const ADMIN_USER = "kube-ipam-test-admin";

let binDir: string | undefined;
const SETPRIV = Bun.which("setpriv") ?? undefined;

/**
 * The directory holding kube-apiserver and kubectl, from scripts/cluster/build-components.sh (cached; the first
 * run builds them from the Go module proxy). Throws with the script's output when it fails: never a skip.
 */
export function kubeBinDir(): string {
  if (binDir) return binDir;
  const r = Bun.spawnSync(["bash", BUILD_SCRIPT], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString().trim().split("\n").at(-1) ?? "";
  if (r.exitCode !== 0 || !out) {
    throw new Error(`The real kube-apiserver is needed and ${BUILD_SCRIPT} failed (exit ${r.exitCode}):\n` +
      `${r.stderr.toString()}${r.stdout.toString()}`);
  }
  binDir = out;
  return out;
}

let etcdBin: string | undefined;

/**
 * The etcd the API server stores in, from scripts/cluster/build-etcd.sh (cached; the first run builds it from the
 * Go module proxy): a 3.6, as Kubernetes 1.34 supports, not Debian's 3.4.23, on which the watch cache cannot
 * serve consistent lists. Throws with the script's output when it fails: never a skip.
 */
export function etcdBinary(): string {
  if (etcdBin) return etcdBin;
  const r = Bun.spawnSync(["bash", ETCD_BUILD_SCRIPT], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString().trim().split("\n").at(-1) ?? "";
  if (r.exitCode !== 0 || !out) {
    throw new Error(`The API server's etcd 3.6 is needed and ${ETCD_BUILD_SCRIPT} failed (exit ${r.exitCode}):\n` +
      `${r.stderr.toString()}${r.stdout.toString()}`);
  }
  etcdBin = join(out, "etcd");
  return etcdBin;
}

/** One entry of the audit log (level Metadata), the fields used here. */
interface AuditEvent {
  readonly auditID: string;
  readonly stage: "RequestReceived" | "ResponseStarted" | "ResponseComplete" | "Panic";
  readonly requestURI: string;
  readonly verb: string;
  readonly user?: { readonly username?: string };
  readonly responseStatus?: { readonly code?: number };
}

const METHODS: Readonly<Record<string, string>> = {
  get: "GET", list: "GET", watch: "GET", create: "POST", update: "PUT", patch: "PATCH", delete: "DELETE",
  deletecollection: "DELETE",
};

// Only the tested code's requests: not the fixture's own, not the server's loopback client, not probes.
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["${ADMIN_USER}", "system:apiserver"]
  - level: None
    nonResourceURLs: ["/readyz*", "/livez*", "/healthz*", "/version"]
  - level: Metadata
`;

const PAUSE_IMAGE = "registry.invalid/pause:3.10"; // never pulled: no kubelet runs

type Json = Record<string, any>;

export class KubeApiServer {
  readonly url: string;
  readonly pki: TestPki;
  /** A bound token of each component's ServiceAccount (deploy/rbac.yaml's rights). */
  readonly tokens: Readonly<Record<Identity, string>>;
  /** The plugin's token (`tokens.plugin`). */
  readonly token: string;
  /** A token of user "no-rights", whom RBAC grants nothing. */
  readonly noRightsToken: string;
  /** The client certificate of user "kube-ipam-client-cert" (the plugin's rights in deploy/rbac.yaml). */
  readonly clientCert: CertPair;
  /** The fixture's own identity (group system:masters: every right); its requests are not in `requests`. */
  readonly adminCert: CertPair;
  readonly #etcd: EtcdServer;
  readonly #dir: string;
  readonly #args: string[];
  readonly #auditPath: string;
  readonly #tls: { ca: string; cert: string; key: string };
  #proc: Subprocess;
  readonly #namespaces = new Set<string>();
  #auditPos = 0;
  #auditTail = "";
  readonly #audit: AuditEvent[] = [];
  #mark = 0;
  #faults: KubeFaults | undefined;
  readonly #cancelExitHook: () => void;

  /** Use startKubeApiServer(). */
  constructor(init: {
    url: string; pki: TestPki; admin: CertPair; clientCert: CertPair; etcd: EtcdServer; dir: string; args: string[];
    proc: Subprocess; tokens: Readonly<Record<Identity, string>>; noRightsToken: string;
  }) {
    this.url = init.url;
    this.pki = init.pki;
    this.clientCert = init.clientCert;
    this.adminCert = init.admin;
    this.#etcd = init.etcd;
    this.#dir = init.dir;
    this.#args = init.args;
    this.#proc = init.proc;
    this.tokens = init.tokens;
    this.token = init.tokens.plugin;
    this.noRightsToken = init.noRightsToken;
    this.#auditPath = join(init.dir, "audit.log");
    this.#tls = {
      ca: readFileSync(init.pki.ca.cert, "utf8"),
      cert: readFileSync(init.admin.cert, "utf8"),
      key: readFileSync(init.admin.key, "utf8"),
    };
    this.#cancelExitHook = onExit(() => {
      this.#proc.kill("SIGKILL");
      rmSync(this.#dir, { recursive: true, force: true });
      rmSync(this.pki.dir, { recursive: true, force: true });
    });
  }

  /** The etcd this server stores in (plain http on loopback). */
  get etcdEndpoint(): string {
    return this.#etcd.endpoint;
  }

  // ---- objects, as an admin ----

  /**
   * Creates the pod, or changes the one of that namespace/name: a pod of another uid (e.g. a fresh makePod of
   * a name in use) is deleted first and created anew, as a re-created pod is; one of the same uid (an object
   * this fixture returned, edited) is updated: metadata unconditionally (last write wins), spec.nodeName
   * through the binding subresource (only from unset: a pod never moves between nodes), status through
   * the status subresource, and a deletionTimestamp by a graceful delete (the pod stays, terminating: no
   * kubelet confirms it). Returns the server's object, shaped as a list item (no kind or apiVersion).
   */
  async setPod(pod: Pod): Promise<Pod> {
    const namespace = pod.metadata.namespace ?? "default";
    const name = pod.metadata.name;
    await this.ensureNamespace(namespace);
    const path = `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`;
    let current = await this.#get<Pod>(path);
    if (current && current.metadata.uid !== pod.metadata.uid) {
      await this.#forceDelete(path);
      current = undefined;
    }
    if (!current) {
      current = await this.#ok<Pod>("POST", `/api/v1/namespaces/${enc(namespace)}/pods`, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: writableMeta(pod),
        spec: {
          ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
          ...(pod.spec?.hostNetwork ? { hostNetwork: true } : {}),
          automountServiceAccountToken: false,
          containers: [{ name: "main", image: PAUSE_IMAGE }],
        },
      });
    } else {
      if (metaDiffers(current, pod)) {
        const { resourceVersion: _rv, ...meta } = current.metadata;
        current = await this.#ok<Pod>("PUT", path, { ...current, metadata: { ...meta, ...writableMeta(pod) } });
      }
      const want = pod.spec?.nodeName ?? "";
      const have = current.spec?.nodeName ?? "";
      if (want !== have) {
        if (have) throw new Error(`pod "${namespace}/${name}" is on "${have}": a pod cannot move to "${want}" (create a new one)`);
        await this.#ok("POST", `${path}/binding`, {
          apiVersion: "v1", kind: "Binding", metadata: { name, namespace }, target: { apiVersion: "v1", kind: "Node", name: want },
        });
        current = (await this.#get<Pod>(path))!;
      }
    }
    if (statusDiffers(current, pod)) {
      const status = { ...current.status, ...pod.status };
      if (!pod.status?.podIP) {
        delete (status as Json).podIP;
        delete (status as Json).podIPs;
      }
      const { resourceVersion: _rv, ...meta } = current.metadata;
      current = await this.#ok<Pod>("PUT", `${path}/status`, { ...current, metadata: meta, status });
    }
    if (pod.metadata.deletionTimestamp && !current.metadata.deletionTimestamp) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? 30;
      current = await this.#ok<Pod>("DELETE", path, { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: grace });
    }
    return listItem(current);
  }

  /** Deletes the pod at once (grace period 0, as `kubectl delete --force`); false when there was none. */
  async deletePod(namespace: string, name: string): Promise<boolean> {
    return this.#forceDelete(`/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`);
  }

  /** The pod as the server has it now, or undefined. */
  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    const pod = await this.#get<Pod>(`/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`);
    return pod && listItem(pod);
  }

  /**
   * Creates the StatefulSet (selector and template for its pods' `app` label), or replaces one of another
   * uid, or updates spec.replicas of the same uid. No controller runs: it creates no pods and has no status.
   */
  async setStatefulSet(sts: StatefulSet): Promise<StatefulSet> {
    const namespace = sts.metadata.namespace ?? "default";
    const name = sts.metadata.name;
    await this.ensureNamespace(namespace);
    const path = `/apis/apps/v1/namespaces/${enc(namespace)}/statefulsets/${enc(name)}`;
    let current = await this.#get<StatefulSet>(path);
    if (current && current.metadata.uid !== sts.metadata.uid) {
      await this.#ok("DELETE", path);
      current = undefined;
    }
    const replicas = sts.spec?.replicas ?? 1;
    if (!current) {
      current = await this.#ok<StatefulSet>("POST", `/apis/apps/v1/namespaces/${enc(namespace)}/statefulsets`, {
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        metadata: writableMeta(sts),
        spec: {
          replicas,
          serviceName: sts.spec?.serviceName ?? name,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "main", image: PAUSE_IMAGE }] } },
        },
      });
    } else if (current.spec?.replicas !== replicas || metaDiffers(current, sts)) {
      const { resourceVersion: _rv, ...meta } = current.metadata;
      current = await this.#ok<StatefulSet>("PUT", path,
        { ...current, metadata: { ...meta, ...writableMeta(sts) }, spec: { ...current.spec, replicas } });
    }
    return listItem(current);
  }

  async deleteStatefulSet(namespace: string, name: string): Promise<boolean> {
    const res = await this.#call("DELETE", `/apis/apps/v1/namespaces/${enc(namespace)}/statefulsets/${enc(name)}`);
    if (res.status === 404) return false;
    if (res.status !== 200) throw apiError("DELETE", name, res);
    return true;
  }

  /**
   * A token of ServiceAccount `namespace/name` (created unless it exists), bound to ClusterRole `clusterRole`
   * when given, as an operator gives Prometheus or a person theirs; resolves once RBAC grants the binding
   * (`grants`, a non-resource URL the role allows, is checked with a SubjectAccessReview).
   */
  async serviceAccountToken(namespace: string, name: string, bind?: { clusterRole: string; grants: string }): Promise<string> {
    await this.ensureNamespace(namespace);
    const sa = await this.#call("POST", `/api/v1/namespaces/${enc(namespace)}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } });
    if (sa.status !== 201 && sa.status !== 409) throw apiError("POST", `serviceaccounts/${name}`, sa);
    if (bind) {
      const bound = await this.#call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: `${namespace}.${name}.${bind.clusterRole}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: bind.clusterRole },
        subjects: [{ kind: "ServiceAccount", name, namespace }],
      });
      if (bound.status !== 201 && bound.status !== 409) throw apiError("POST", `clusterrolebindings (${bind.clusterRole})`, bound);
    }
    const minted = await this.#call("POST", `/api/v1/namespaces/${enc(namespace)}/serviceaccounts/${enc(name)}/token`, {
      apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 },
    });
    if (minted.status !== 201) throw apiError("POST", `serviceaccounts/${name}/token`, minted);
    if (bind) {
      // RBAC reads its bindings from an informer.
      const user = `system:serviceaccount:${namespace}:${name}`;
      const groups = ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"];
      const until = Date.now() + 20_000;
      for (;;) {
        const review = await this.#call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
          apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
          spec: { user, groups, nonResourceAttributes: { path: bind.grants, verb: "get" } },
        });
        if (review.body?.status?.allowed === true) break;
        if (Date.now() > until) throw new Error(`${user} was not granted get ${bind.grants} through ${bind.clusterRole}`);
        await Bun.sleep(50);
      }
    }
    return minted.body.status.token as string;
  }

  /** Creates the namespace (and its "default" ServiceAccount, which pod admission requires) unless it exists. */
  async ensureNamespace(namespace: string): Promise<void> {
    if (this.#namespaces.has(namespace)) return;
    for (const [path, body] of [
      ["/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }],
      [`/api/v1/namespaces/${enc(namespace)}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } }],
    ] as const) {
      const res = await this.#call("POST", path, body);
      if (res.status !== 201 && res.status !== 409) throw apiError("POST", path, res);
    }
    this.#namespaces.add(namespace);
  }

  /** Every pod of every namespace, as the admin lists them (one page). */
  async listPods(): Promise<{ items: Pod[]; resourceVersion: string }> {
    const list = await this.#ok<{ items: Pod[]; metadata: { resourceVersion: string } }>("GET", "/api/v1/pods");
    return { items: list.items, resourceVersion: list.metadata.resourceVersion };
  }

  /** An admin request, answered as the server answers it. */
  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    return this.#call(method, path, body);
  }

  // ---- what the tested code asked ----

  /** The requests of the tested identities since the last clearRequests(), "GET /path?query", in arrival order. */
  get requests(): string[] {
    return this.#events().filter((e) => e.stage === "RequestReceived").map((e) => `${METHODS[e.verb] ?? e.verb.toUpperCase()} ${e.requestURI}`);
  }

  get watchRequests(): string[] {
    return this.requests.filter((r) => /[?&]watch=(true|1)(&|$)/.test(r));
  }

  /** Watches of the tested identities the server is serving now (started, not complete). */
  get openWatches(): number {
    this.#read();
    const open = new Set<string>();
    for (const e of this.#audit) {
      if (e.verb !== "watch") continue;
      if (e.stage === "ResponseStarted") open.add(e.auditID);
      else if (e.stage === "ResponseComplete" || e.stage === "Panic") open.delete(e.auditID);
    }
    return open.size;
  }

  /** Forgets the requests so far: `requests` starts again from the next one. Open watches stay counted. */
  clearRequests(): void {
    this.#read();
    this.#mark = this.#audit.length;
  }

  #events(): AuditEvent[] {
    this.#read();
    return this.#audit.slice(this.#mark);
  }

  #read(): void {
    let size: number;
    try {
      size = statSync(this.#auditPath).size;
    } catch {
      return;
    }
    if (size <= this.#auditPos) return;
    const fd = openSync(this.#auditPath, "r");
    try {
      const buf = Buffer.alloc(size - this.#auditPos);
      const n = readSync(fd, buf, 0, buf.length, this.#auditPos);
      this.#auditPos += n;
      const text = this.#auditTail + buf.subarray(0, n).toString("utf8");
      const lines = text.split("\n");
      this.#auditTail = lines.pop()!;
      for (const line of lines) if (line) this.#audit.push(JSON.parse(line) as AuditEvent);
    } finally {
      closeSync(fd);
    }
  }

  // ---- the server's life ----

  /**
   * Kills the API server (SIGKILL: every connection is cut) and starts it again on the same port and etcd. Its
   * watch cache starts afresh at the current revision: a watch resumed from a resourceVersion before the
   * restart gets the real 410 Expired ERROR event, as after any API server restart.
   */
  /**
   * Applies deploy/kubernetes-datastore.yaml (kube-ipam's custom resources and the rights to them) and waits
   * until the resources are served and RBAC grants them to the plugin and the controller.
   */
  async installDatastore(): Promise<void> {
    const docs = await applyManifest((m, p, b) => this.request(m, p, b), "kubernetes-datastore.yaml");
    const until = Date.now() + 30_000;
    const crds = docs.filter((d) => d.kind === "CustomResourceDefinition").map((d) => d.metadata.name as string);
    for (const name of crds) {
      for (;;) {
        const r = await this.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        if (r.body?.status?.conditions?.some((c: Json) => c.type === "Established" && c.status === "True")) break;
        if (Date.now() > until) throw new Error(`CRD ${name} was not Established within 30 s`);
        await Bun.sleep(50);
      }
    }
    // A new resource's watch cache starts empty and fills in the background; the first read from it (an
    // ADD's) would wait for that. Production API servers have theirs warm: so does this one.
    // (Until then it answers 429 Too Many Requests.)
    for (const resource of ["ipallocations", "ipreservations", "ipcursors"]) {
      for (;;) {
        const r = await this.request("GET", `/apis/kube-ipam.io/v1alpha1/${resource}?resourceVersion=0`);
        if (r.status === 200) break;
        if (r.status !== 429 || Date.now() > until) throw new Error(`the watch cache of ${resource} did not answer: HTTP ${r.status}`);
        await Bun.sleep(50);
      }
    }
    const ca = readFileSync(this.pki.ca.cert, "utf8");
    // RBAC reads its bindings from an informer: wait until each identity's last right is granted.
    const probes: [Identity, string][] = [
      ["plugin", "/apis/kube-ipam.io/v1alpha1/ipallocations?limit=1"],
      ["controller", "/apis/kube-ipam.io/v1alpha1/ipallocations?limit=1"],
      ["controller", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-ipam-controller"],
    ];
    for (const [identity, path] of probes) {
      for (;;) {
        const res = await fetch(`${this.url}${path}`, { headers: { Authorization: `Bearer ${this.tokens[identity]}` }, tls: { ca } } as RequestInit);
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 404) break;
        if (Date.now() > until) throw new Error(`the ${identity}'s ServiceAccount was not granted ${path}: HTTP ${res.status}`);
        await Bun.sleep(50);
      }
    }
    this.clearRequests();
  }

  /** Kills the API server's etcd and starts it again on its data; the API server reconnects by itself. */
  async restartEtcd(): Promise<void> {
    await this.#etcd.restart();
  }

  async restart(): Promise<void> {
    this.#proc.kill("SIGKILL");
    await this.#proc.exited;
    this.#proc = spawnApiServer(this.#args, this.#dir);
    await waitReady(this.url, this.#proc, this.#dir, this.#tls);
  }

  /**
   * Compacts etcd past every revision so far (through etcd's JSON gateway): one write outside the API's keys
   * moves the revision on, and the compaction is at that revision. Returns it.
   */
  async compactEtcd(): Promise<string> {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const put = await fetch(`${this.#etcd.endpoint}/v3/kv/put`, {
      method: "POST", body: JSON.stringify({ key: b64("/kube-ipam-test/compaction"), value: b64(new Date().toISOString()) }),
    });
    const revision = ((await put.json()) as { header: { revision: string } }).header.revision;
    const res = await fetch(`${this.#etcd.endpoint}/v3/kv/compaction`, {
      method: "POST", body: JSON.stringify({ revision, physical: true }),
    });
    if (!res.ok) throw new Error(`etcd compaction at ${revision} failed: ${res.status} ${await res.text()}`);
    return revision;
  }

  /**
   * Makes every continue token handed out so far answer the real 410 Expired: etcd is compacted past them and
   * the API server restarted, so that no list snapshot of its watch cache can serve them either.
   */
  async expireContinueTokens(): Promise<void> {
    await this.compactEtcd();
    await this.restart();
  }

  /** The fault-injecting proxy in front of this server, started on first use; stopped with the server. */
  faults(options: KubeFaultsOptions = {}): KubeFaults {
    if (options.requireClientCert) return new KubeFaults(this, options);
    this.#faults ??= new KubeFaults(this, options);
    return this.#faults;
  }

  async stop(): Promise<void> {
    this.#faults?.stop();
    this.#proc.kill("SIGKILL");
    await this.#proc.exited;
    await this.#etcd.stop();
    rmSync(this.#dir, { recursive: true, force: true });
    rmSync(this.pki.dir, { recursive: true, force: true });
    this.#cancelExitHook();
  }

  /** The end of the API server's log, for failures. */
  log(lines = 30): string {
    try {
      return readFileSync(join(this.#dir, "kube-apiserver.log"), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Writes a kubeconfig for this server in dir and returns its path; a token is `options.identity`'s (the plugin's). */
  writeKubeconfig(dir: string, variant: KubeconfigVariant, options: WriteKubeconfigOptions = {}): string {
    return writeKubeconfigFile(dir, variant, {
      server: options.server ?? this.url, ca: this.pki.ca.cert, token: options.token ?? this.tokens[options.identity ?? "plugin"],
      client: options.client ?? this.clientCert, form: options.form, file: options.file,
    });
  }

  // ---- admin requests ----

  async #call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.url + path, {
      method,
      headers: { Accept: "application/json", ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: this.#tls,
      signal: AbortSignal.timeout(30_000),
      keepalive: false, // a pooled connection may be one a restart() cut
    } as RequestInit);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed };
  }

  async #ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.#call(method, path, body);
    if (res.status !== 200 && res.status !== 201) throw apiError(method, path, res);
    return res.body as T;
  }

  async #get<T>(path: string): Promise<T | undefined> {
    const res = await this.#call("GET", path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw apiError("GET", path, res);
    return res.body as T;
  }

  async #forceDelete(path: string): Promise<boolean> {
    const res = await this.#call("DELETE", path, { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 });
    if (res.status === 404) return false;
    if (res.status !== 200) throw apiError("DELETE", path, res);
    return true;
  }
}

function apiError(method: string, path: string, res: { status: number; body: any }): Error {
  const message = typeof res.body === "object" ? (res.body as Status).message : String(res.body);
  return new Error(`kube-apiserver: ${method} ${path}: HTTP ${res.status}: ${message}`);
}

const enc = encodeURIComponent;

/** The metadata a client may write: no uid, resourceVersion, timestamps (the server sets them). */
function writableMeta(o: Pod | StatefulSet): Json {
  const m = o.metadata;
  return {
    name: m.name,
    ...(m.namespace ? { namespace: m.namespace } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    ...(m.annotations ? { annotations: m.annotations } : {}),
    ...(m.ownerReferences ? { ownerReferences: m.ownerReferences } : {}),
  };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}

function metaDiffers(current: Pod | StatefulSet, wanted: Pod | StatefulSet): boolean {
  const c = current.metadata, w = wanted.metadata;
  return !same(c.labels, w.labels) || !same(c.annotations, w.annotations) || !same(c.ownerReferences ?? [], w.ownerReferences ?? []);
}

function statusDiffers(current: Pod, wanted: Pod): boolean {
  const c = current.status ?? {}, w = wanted.status ?? {};
  return (w.phase ?? "Pending") !== (c.phase ?? "Pending") || (w.podIP ?? "") !== (c.podIP ?? "") ||
    !same(w.podIPs ?? [], c.podIPs ?? []);
}

/** As a list returns items: without kind and apiVersion. */
function listItem<T extends { kind?: string; apiVersion?: string }>(o: T): T {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest as T;
}

export function writeKubeconfigFile(dir: string, variant: KubeconfigVariant, o: {
  server: string; ca: string; token: string; client: CertPair; form?: "data" | "paths"; file?: string;
}): string {
  const form = variant === "token-file-paths" ? "paths" : o.form ?? "data";
  mkdirSync(dir, { recursive: true });
  const b64 = (path: string) => readFileSync(path).toString("base64");
  const copy = (from: string, name: string) => {
    mkdirSync(join(dir, "pki"), { recursive: true });
    copyFileSync(from, join(dir, "pki", name));
    return `pki/${name}`; // relative: resolved against the kubeconfig's directory
  };
  const ca = form === "data" ? `certificate-authority-data: ${b64(o.ca)}` : `certificate-authority: ${copy(o.ca, "ca.crt")}`;
  let user: string[];
  if (variant === "client-cert") {
    user = form === "data"
      ? [`client-certificate-data: ${b64(o.client.cert)}`, `client-key-data: ${b64(o.client.key)}`]
      : [`client-certificate: ${copy(o.client.cert, "client.crt")}`, `client-key: ${copy(o.client.key, "client.key")}`];
  } else if (variant === "token-file-paths") {
    mkdirSync(join(dir, "pki"), { recursive: true });
    writeFileSync(join(dir, "pki", "token"), `${o.token}\n`);
    user = ["tokenFile: pki/token"];
  } else {
    user = [`token: ${o.token}`];
  }
  const text = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster:",
    `    ${ca}`,
    `    server: ${o.server}`,
    "  name: test",
    "contexts:",
    "- context:",
    "    cluster: test",
    "    user: kube-ipam",
    "  name: kube-ipam@test",
    "current-context: kube-ipam@test",
    "preferences: {}",
    "users:",
    "- name: kube-ipam",
    "  user:",
    ...user.map((line) => `    ${line}`),
    "",
  ].join("\n");
  const path = join(dir, o.file ?? "kubeconfig");
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

function spawnApiServer(args: readonly string[], dir: string): Subprocess {
  const log = join(dir, "kube-apiserver.log");
  appendFileSync(log, `--- started ${new Date().toISOString()}\n`);
  const fd = openSync(log, "a");
  try {
    // setpriv --pdeathsig: the kernel kills the server when the test process dies, even by SIGKILL (no
    // exit hook runs then). It execs kube-apiserver, so the pid is the server's.
    const wrap = SETPRIV ? [SETPRIV, "--pdeathsig", "KILL", "--"] : [];
    return Bun.spawn([...wrap, join(kubeBinDir(), "kube-apiserver"), ...args], { stdin: "ignore", stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
}

class StartError extends Error {
  constructor(message: string, readonly portTaken: boolean) {
    super(message);
  }
}

async function waitReady(url: string, proc: Subprocess, dir: string, tls: { ca: string; cert: string; key: string }): Promise<void> {
  const until = Date.now() + READY_MS;
  while (Date.now() < until && proc.exitCode === null && proc.signalCode === null) {
    try {
      const res = await fetch(`${url}/readyz`, { tls, signal: AbortSignal.timeout(2000), keepalive: false } as RequestInit);
      if (res.status === 200 && (await res.text()) === "ok") return;
    } catch {}
    await Bun.sleep(100);
  }
  const log = readFileSync(join(dir, "kube-apiserver.log"), "utf8");
  proc.kill("SIGKILL");
  await proc.exited;
  throw new StartError(`kube-apiserver did not become ready at ${url}:\n${log.split("\n").slice(-30).join("\n")}`,
    /address already in use/.test(log));
}

/** Applies deploy/`file` as an admin would (`kubectl apply -f`), each document through its API. */
async function applyManifest(call: (m: string, p: string, b?: unknown) => Promise<{ status: number; body: any }>, file: string): Promise<Json[]> {
  const docs = Bun.YAML.parse(readFileSync(join(REPO, "deploy", file), "utf8")) as Json[];
  const paths: Readonly<Record<string, (d: Json) => string>> = {
    ServiceAccount: (d) => `/api/v1/namespaces/${d.metadata.namespace}/serviceaccounts`,
    Secret: (d) => `/api/v1/namespaces/${d.metadata.namespace}/secrets`,
    ClusterRole: () => "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    ClusterRoleBinding: () => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    Role: (d) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${d.metadata.namespace}/roles`,
    RoleBinding: (d) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${d.metadata.namespace}/rolebindings`,
    CustomResourceDefinition: () => "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
  };
  for (const doc of docs) {
    const path = paths[doc.kind]?.(doc);
    if (!path) throw new Error(`deploy/${file}: no path known for kind ${doc.kind}`);
    const res = await call("POST", path, doc);
    if (res.status !== 201) throw apiError("POST", path, res);
  }
  return docs;
}

async function applyRbac(call: (m: string, p: string, b?: unknown) => Promise<{ status: number; body: any }>): Promise<void> {
  await applyManifest(call, "rbac.yaml");
}

export interface StartKubeApiServerOptions {
  /** Extra kube-apiserver flags. */
  readonly args?: readonly string[];
  /** Where etcd's data directory is made (the bench: on disk, as in production); default tmpfs. */
  readonly etcdDataDir?: string;
  /**
   * An address of this machine the server also answers at, beyond loopback (it binds every address and its
   * certificate names this one): the chaos bed's hosts, in network namespaces, reach it there.
   */
  readonly reachableAt?: string;
}

/**
 * Starts etcd and kube-apiserver on free loopback ports (new ports when one was taken in between), waits for
 * /readyz, applies deploy/rbac.yaml, mints a token of each ServiceAccount and waits until RBAC grants them.
 */
export async function startKubeApiServer(options: StartKubeApiServerOptions = {}): Promise<KubeApiServer> {
  kubeBinDir(); // fails first, and clearly, when the programs cannot be built
  const etcdProgram = etcdBinary();
  const pki = makeTestPki(options.reachableAt ? [options.reachableAt] : []);
  const dir = mkdtempSync(join(existsShm() ? "/dev/shm" : pki.dir, "kube-ipam-apiserver-"));
  const removeOnExit = onExit(() => rmSync(dir, { recursive: true, force: true }));
  let etcd: EtcdServer | undefined;
  try {
    const admin = makeClientCert(pki, ADMIN_USER, ["system:masters"]);
    const clientCert = makeClientCert(pki, CERT_USER);
    const saKey = join(dir, "sa.key");
    const saPub = join(dir, "sa.pub");
    openssl(["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", saKey]);
    openssl(["ec", "-in", saKey, "-pubout", "-out", saPub]);
    const noRightsToken = `no-rights-${crypto.randomUUID()}`;
    writeFileSync(join(dir, "tokens.csv"), `${noRightsToken},${NO_RIGHTS_USER},uid-${NO_RIGHTS_USER}\n`);
    writeFileSync(join(dir, "audit-policy.yaml"), AUDIT_POLICY);
    etcd = await startEtcd({ binary: etcdProgram, ...(options.etcdDataDir ? { dataDir: options.etcdDataDir } : {}) });
    const tls = { ca: readFileSync(pki.ca.cert, "utf8"), cert: readFileSync(admin.cert, "utf8"), key: readFileSync(admin.key, "utf8") };
    for (let attempt = 1; ; attempt++) {
      const [port] = freePorts(1) as [number];
      const url = `https://127.0.0.1:${port}`;
      const args = [
        "--etcd-servers", etcd.endpoint,
        "--bind-address", options.reachableAt ? "0.0.0.0" : "127.0.0.1", "--secure-port", String(port),
        "--tls-cert-file", pki.server.cert, "--tls-private-key-file", pki.server.key,
        "--client-ca-file", pki.ca.cert,
        "--token-auth-file", join(dir, "tokens.csv"),
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
        "--service-cluster-ip-range", "10.0.0.0/24",
        "--authorization-mode", "Node,RBAC",
        "--audit-policy-file", join(dir, "audit-policy.yaml"), "--audit-log-path", join(dir, "audit.log"),
        // No compaction of its own: tests compact etcd when they mean it (compactEtcd).
        "--etcd-compaction-interval", "0",
        ...(options.args ?? []),
      ];
      const proc = spawnApiServer(args, dir);
      try {
        await waitReady(url, proc, dir, tls);
      } catch (e) {
        if (e instanceof StartError && e.portTaken && attempt < ATTEMPTS) continue;
        throw e;
      }
      const api = new KubeApiServer({ url, pki, admin, clientCert, etcd, dir, args, proc, tokens: { plugin: "", agent: "", controller: "" }, noRightsToken });
      removeOnExit(); // the server's own exit hook removes dir from now on
      try {
        await bootstrap(api, clientCert);
      } catch (e) {
        await api.stop();
        throw e;
      }
      return api;
    }
  } catch (e) {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(pki.dir, { recursive: true, force: true });
    removeOnExit();
    throw e;
  }
}

async function bootstrap(api: KubeApiServer, clientCert: CertPair): Promise<void> {
  const call = (m: string, p: string, b?: unknown) => api.request(m, p, b);
  await applyRbac(call);
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding",
    metadata: { name: "kube-ipam-client-cert" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SERVICE_ACCOUNTS.plugin },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: CERT_USER }],
  };
  const bound = await call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding);
  if (bound.status !== 201) throw apiError("POST", "clusterrolebindings", bound);
  const tokens = {} as Record<Identity, string>;
  for (const [identity, account] of Object.entries(SERVICE_ACCOUNTS) as [Identity, string][]) {
    const minted = await call("POST", `/api/v1/namespaces/kube-system/serviceaccounts/${account}/token`, {
      apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 2 * 86400 },
    });
    if (minted.status !== 201) throw apiError("POST", `serviceaccounts/${account}/token`, minted);
    tokens[identity] = minted.body.status.token;
  }
  Object.assign(api, { tokens, token: tokens.plugin });
  await api.ensureNamespace("default");
  // RBAC reads its bindings from an informer: wait until every identity is granted. A GET of a pod that does
  // not exist is 404 to an identity that may get pods, 403 to one that may not (yet).
  const ca = readFileSync(api.pki.ca.cert, "utf8");
  const bearer = (identity: Identity) => ({ headers: { Authorization: `Bearer ${tokens[identity]}` }, tls: { ca } });
  const probes: [string, string, RequestInit & { tls?: unknown }][] = [
    ["plugin's token", "/api/v1/namespaces/default/pods/kube-ipam-rbac-probe", bearer("plugin")],
    ["agent's token", "/api/v1/pods?limit=1", bearer("agent")],
    ["controller's token", "/apis/apps/v1/statefulsets?limit=1", bearer("controller")],
    ["client certificate", "/api/v1/namespaces/default/pods/kube-ipam-rbac-probe",
      { tls: { ca, cert: readFileSync(clientCert.cert, "utf8"), key: readFileSync(clientCert.key, "utf8") } }],
  ];
  const until = Date.now() + 20_000;
  for (const [what, path, init] of probes) {
    for (;;) {
      const res = await fetch(`${api.url}${path}`, init as RequestInit);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 404) break;
      if (Date.now() > until) throw new Error(`the ${what} identity was not granted deploy/rbac.yaml's rights: HTTP ${res.status}`);
      await Bun.sleep(50);
    }
  }
  api.clearRequests();
}

function existsShm(): boolean {
  try {
    return statSync("/dev/shm").isDirectory();
  } catch {
    return false;
  }
}

function openssl(args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

// ---- faults on demand, in front of the real server ----

export interface KubeFaultsOptions {
  /**
   * Demand a client certificate from the test CA in the TLS handshake (a TLS-terminating front of the API
   * that checks certificates itself; kube-apiserver only asks for one). A separate proxy each time.
   */
  readonly requireClientCert?: boolean;
}

const REASONS: Readonly<Record<number, string>> = {
  400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired", 429: "TooManyRequests",
  500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
};

interface OpenWatch {
  drop(): void;
}

/**
 * An HTTPS proxy in front of a KubeApiServer, with the server's certificate: requests (and their bearer
 * tokens) go through to the real server and its answers come back unchanged, streams included, except
 * for the faults a test asks for. Client certificates cannot pass through it: use a token.
 */
export class KubeFaults {
  readonly url: string;
  /** Every request that reached the proxy, "GET /path?query", in arrival order (failed ones included). */
  readonly requests: string[] = [];
  /** Called (and awaited) as each request arrives, before it is held, failed or passed on. */
  onRequest: ((request: string) => void | Promise<void>) | undefined;
  readonly #upstream: string;
  readonly #ca: string;
  readonly #server: Server<undefined>;
  readonly #watches = new Set<OpenWatch>();
  readonly #waiting = new Set<() => void>();
  #failStatus: number | undefined;
  #failAfter = 0;
  #delayMs = 0;

  constructor(api: KubeApiServer, options: KubeFaultsOptions = {}) {
    this.#upstream = api.url;
    this.#ca = readFileSync(api.pki.ca.cert, "utf8");
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      tls: {
        cert: readFileSync(api.pki.server.cert, "utf8"),
        key: readFileSync(api.pki.server.key, "utf8"),
        ...(options.requireClientCert ? { ca: this.#ca, requestCert: true, rejectUnauthorized: true } : {}),
      },
      fetch: (req) => this.#handle(req),
    });
    this.url = `https://127.0.0.1:${this.#server.port}`;
  }

  /** Answers every request with this HTTP status (a Status body), after `after` more passed through; undefined heals. */
  failWith(status: number | undefined, options: { after?: number } = {}): void {
    this.#failStatus = status;
    this.#failAfter = options.after ?? 0;
  }

  /** Holds every request back this long before passing it on; 0 releases the ones waiting. */
  delay(ms: number): void {
    this.#delayMs = ms;
    if (ms === 0) this.#release();
  }

  /** Watch streams open through the proxy now. */
  get openWatches(): number {
    return this.#watches.size;
  }

  get watchRequests(): string[] {
    return this.requests.filter((r) => /[?&]watch=(true|1)(&|$)/.test(r));
  }

  /** Cuts every open watch stream: the client reads a connection reset, as when a load balancer drops it. */
  dropWatches(): void {
    for (const w of [...this.#watches]) w.drop();
  }

  stop(): void {
    this.#release();
    this.dropWatches();
    this.#server.stop(true);
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const request = `${req.method} ${url.pathname}${url.search}`;
    this.requests.push(request);
    await this.onRequest?.(request);
    if (this.#delayMs > 0) await this.#wait(this.#delayMs);
    if (this.#failStatus !== undefined) {
      if (this.#failAfter > 0) this.#failAfter--;
      else return failure(this.#failStatus, `injected failure ${this.#failStatus}`);
    }
    const headers = new Headers();
    for (const name of ["authorization", "accept", "content-type", "user-agent"]) {
      const v = req.headers.get(name);
      if (v !== null) headers.set(name, v);
    }
    const upstream = new AbortController();
    req.signal.addEventListener("abort", () => upstream.abort(), { once: true });
    let res: Response;
    try {
      res = await fetch(this.#upstream + url.pathname + url.search, {
        method: req.method, headers, body: req.method === "GET" ? undefined : await req.arrayBuffer(),
        tls: { ca: this.#ca }, signal: upstream.signal, redirect: "manual", decompress: true,
        keepalive: false, // each request on its own connection: a restart() of the server cuts no pooled one
      } as RequestInit);
    } catch (e) {
      return failure(502, `the proxy could not reach the API server: ${(e as Error).message}`);
    }
    const out = new Headers();
    for (const name of ["content-type", "audit-id", "cache-control"]) {
      const v = res.headers.get(name);
      if (v !== null) out.set(name, v);
    }
    if (!/[?&]watch=(true|1)(&|$)/.test(url.search) || res.status !== 200 || !res.body) {
      return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
    }
    const reader = res.body.getReader();
    let watch: OpenWatch | undefined;
    const end = () => {
      if (watch) this.#watches.delete(watch);
      upstream.abort();
    };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        watch = {
          drop: () => {
            end();
            try {
              controller.error(); // Bun resets the connection, as the stand-in did
            } catch {}
          },
        };
        this.#watches.add(watch);
        // Bun sends the headers only with the first byte of the body, kube-apiserver as the watch starts: a
        // newline is that byte (a JSON stream's decoder skips whitespace between values).
        controller.enqueue(new TextEncoder().encode("\n"));
        void (async () => {
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              controller.enqueue(value);
            }
            end();
            controller.close();
          } catch {
            watch?.drop();
          }
        })();
      },
      cancel: end,
    });
    return new Response(body, { status: 200, headers: out });
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }

  #release(): void {
    for (const done of [...this.#waiting]) done();
  }
}

function failure(code: number, message: string): Response {
  const body: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason: REASONS[code] ?? "Unknown", code };
  return new Response(JSON.stringify(body), { status: code, headers: { "Content-Type": "application/json" } });
}
