// The peer whereabouts v0.9.2 with its Kubernetes datastore: IPPool (and OverlappingRangeIPReservation)
// custom resources on a real kube-apiserver. The bench runs its CNI binary directly, as a runtime runs an
// ipam plugin; none of its DaemonSet runs (no ip-control-loop reconciler, no node-slice controller), so
// nothing garbage-collects leaked allocations, which a bench does not need.
//
// v0.9.2 refuses every call ("config file not found", exit code 999) unless a flat file whereabouts.conf
// exists: `configuration_path`, else /etc/kubernetes/cni/net.d/whereabouts.d/, /etc/cni/net.d/whereabouts.d/,
// /host/etc/cni/net.d/whereabouts.d/ (its install-cni.sh writes one there). whereaboutsK8sConf writes one
// beside the kubeconfig and names it in configuration_path.
//
// What the binary does per call (v0.9.2, pkg/storage/kubernetes/ipam.go), all in the namespace of the
// kubeconfig's current context (kube-system when it names none):
//   - needs CNI_ARGS K8S_POD_NAME (ADD fails with "no pod name" without it; DEL then silently does nothing
//     and exits 0); K8S_POD_NAMESPACE/K8S_POD_NAME make the podRef and the lease identity. It never GETs
//     the pod. CNI_NETNS must be set for ADD (skel checks it) but is never opened.
//   - takes the one Lease "whereabouts" by leader election (1.5 s lease, 0.5 s retry, released on exit):
//     every ADD and DEL of the cluster is serialised through it. Two calls with the same pod ref share an
//     identity and both believe they lead; the IPPool patch's resourceVersion test still keeps them apart.
//   - LISTs ippools (a connectivity check), GETs the IPPool (creating it, then retrying, when missing),
//     PATCHes it (JSON patch with a resourceVersion test), and with enable_overlapping_ranges (its default)
//     GETs and CREATEs (ADD) or DELETEs (DEL) an OverlappingRangeIPReservation named after the address.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export type ApiRequest = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

const SCRIPT = resolve(import.meta.dir, "../../scripts/peers/build-whereabouts.sh");
const CRD_FILES = [
  "whereabouts.cni.cncf.io_ippools.yaml",
  "whereabouts.cni.cncf.io_overlappingrangeipreservations.yaml",
  "whereabouts.cni.cncf.io_nodeslicepools.yaml",
];
export const WHEREABOUTS_GROUP = "whereabouts.cni.cncf.io";
export const WHEREABOUTS_API = `/apis/${WHEREABOUTS_GROUP}/v1alpha1`;

let built: { bin: string; crds: string[] } | undefined;

/** The binary and CRD manifests from scripts/peers/build-whereabouts.sh (built once, then cached). */
export function whereaboutsK8sBuild(): { bin: string; crds: string[] } {
  if (built) return built;
  const r = Bun.spawnSync(["bash", SCRIPT], { stdout: "pipe", stderr: "pipe" });
  const dir = r.stdout.toString().trim().split("\n").at(-1) ?? "";
  if (r.exitCode !== 0 || !dir) {
    throw new Error(`${SCRIPT} failed (exit ${r.exitCode}):\n${r.stderr.toString()}${r.stdout.toString()}`);
  }
  built = { bin: join(dir, "bin/whereabouts"), crds: CRD_FILES.map((f) => join(dir, "crds", f)) };
  return built;
}

function fail(what: string, res: { status: number; body: any }): Error {
  const message = typeof res.body === "object" && res.body ? res.body.message : String(res.body);
  return new Error(`whereabouts peer: ${what}: HTTP ${res.status}: ${message}`);
}

/** Creates whereabouts' CRDs (as an admin; existing ones are kept) and waits until each is Established. */
export async function installWhereaboutsCrds(request: ApiRequest, timeoutMs = 30_000): Promise<void> {
  const base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  const names: string[] = [];
  for (const file of whereaboutsK8sBuild().crds) {
    const crd = Bun.YAML.parse(readFileSync(file, "utf8")) as { metadata: { name: string } };
    const res = await request("POST", base, crd);
    if (res.status !== 201 && res.status !== 409) throw fail(`create CRD ${crd.metadata.name}`, res);
    names.push(crd.metadata.name);
  }
  const until = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const res = await request("GET", `${base}/${name}`);
      const conditions: { type: string; status: string }[] = res.body?.status?.conditions ?? [];
      if (res.status === 200 && conditions.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > until) throw fail(`CRD ${name} not Established after ${timeoutMs} ms`, res);
      await Bun.sleep(50);
    }
  }
}

/**
 * What the CNI binary itself uses, and nothing more. Upstream's ClusterRole "whereabouts-cni"
 * (doc/crds/daemonset-install.yaml) grants more: all verbs on the three CRDs, leases "*", pods and nodes
 * get/list/watch, network-attachment-definitions get/list/watch, events create/patch/update/get. That role
 * is shared with the DaemonSet's ip-control-loop (reconciler, pod controller), which the bench does not run.
 */
export const WHEREABOUTS_CNI_RULES = [
  // LIST: connectivity check on every call; GET/CREATE the pool; PATCH: every allocation and release.
  { apiGroups: [WHEREABOUTS_GROUP], resources: ["ippools"], verbs: ["get", "list", "create", "patch"] },
  // enable_overlapping_ranges (default true): GET + CREATE on ADD, DELETE on DEL.
  { apiGroups: [WHEREABOUTS_GROUP], resources: ["overlappingrangeipreservations"], verbs: ["get", "create", "delete"] },
  // Only with node_slice_size (not used by the bench).
  { apiGroups: [WHEREABOUTS_GROUP], resources: ["nodeslicepools"], verbs: ["get"] },
  // Leader election on the Lease "whereabouts" (release on exit is an update).
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
] as const;

export type RbacSubject =
  | { readonly kind: "ServiceAccount"; readonly namespace: string; readonly name: string }
  | { readonly kind: "User"; readonly name: string };

/** The ClusterRole `name` with WHEREABOUTS_CNI_RULES and its ClusterRoleBinding to `subject` (409s kept). */
export async function installWhereaboutsRbac(request: ApiRequest, subject: RbacSubject, name = "whereabouts-cni"): Promise<void> {
  const rbac = "/apis/rbac.authorization.k8s.io/v1";
  const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules: WHEREABOUTS_CNI_RULES };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [subject.kind === "ServiceAccount"
      ? { kind: "ServiceAccount", namespace: subject.namespace, name: subject.name }
      : { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: subject.name }],
  };
  for (const [path, body] of [[`${rbac}/clusterroles`, role], [`${rbac}/clusterrolebindings`, binding]] as const) {
    const res = await request("POST", path, body);
    if (res.status !== 201 && res.status !== 409) throw fail(`create ${body.kind} ${name}`, res);
  }
}

/**
 * A least-privilege identity for the binary: ServiceAccount `namespace/name` (created), bound to
 * WHEREABOUTS_CNI_RULES, and a bound token from the TokenRequest API. Waits (SubjectAccessReview) until RBAC
 * grants it, as RBAC reads bindings from an informer. Returns the token, for a kubeconfig.
 */
export async function whereaboutsServiceAccountToken(request: ApiRequest, namespace = "kube-system", name = "whereabouts",
  timeoutMs = 20_000): Promise<string> {
  const sa = await request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`,
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } });
  if (sa.status !== 201 && sa.status !== 409) throw fail(`create ServiceAccount ${namespace}/${name}`, sa);
  await installWhereaboutsRbac(request, { kind: "ServiceAccount", namespace, name });
  const minted = await request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 86400 } });
  if (minted.status !== 201) throw fail(`TokenRequest for ${namespace}/${name}`, minted);
  const user = `system:serviceaccount:${namespace}:${name}`;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const review = await request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
      spec: { user, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
        resourceAttributes: { group: "coordination.k8s.io", resource: "leases", verb: "update", namespace } },
    });
    if (review.status === 201 && review.body?.status?.allowed === true) break;
    if (Date.now() > until) throw fail(`RBAC did not grant ${user}`, review);
    await Bun.sleep(50);
  }
  return minted.body.status.token as string;
}

export interface WhereaboutsK8sConfOptions {
  /** The network's name; also whereabouts' network_name, so that the IPPool is "<network>-<range>". */
  readonly network: string;
  /** CIDR, e.g. "10.50.0.0/23". */
  readonly range: string;
  readonly rangeStart?: string;
  readonly rangeEnd?: string;
  /** Path of a kubeconfig; its current context's namespace (default kube-system) holds pools and lease. */
  readonly kubeconfig: string;
  /** The flat file to write and name in configuration_path; default whereabouts.conf beside the kubeconfig. */
  readonly flatFile?: string;
  /** Default true, as upstream: one OverlappingRangeIPReservation per address (2 more requests per ADD). */
  readonly overlappingRanges?: boolean;
}

/** Writes the flat file as upstream's install-cni.sh does (datastore, kubeconfig); returns its path. */
export function writeWhereaboutsFlatFile(path: string, kubeconfig: string): string {
  writeFileSync(path, `${JSON.stringify({ datastore: "kubernetes", kubernetes: { kubeconfig } }, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/**
 * The network config the runtime would pass to whereabouts as the ipam plugin of a main plugin (and the
 * flat file it demands, written now). The main plugin's type is never read by whereabouts (only name,
 * cniVersion and ipam are); "bridge" stands in.
 */
export function whereaboutsK8sConf(o: WhereaboutsK8sConfOptions): string {
  const flatFile = writeWhereaboutsFlatFile(o.flatFile ?? join(dirname(o.kubeconfig), "whereabouts.conf"), o.kubeconfig);
  const ipam: Record<string, unknown> = {
    type: "whereabouts",
    configuration_path: flatFile,
    range: o.range,
    // Without it the pool is named after the range alone and every network of that CIDR shares it.
    network_name: o.network,
    kubernetes: { kubeconfig: o.kubeconfig },
    enable_overlapping_ranges: o.overlappingRanges ?? true,
    log_level: "error", // its default is debug, on stderr
  };
  if (o.rangeStart) ipam.range_start = o.rangeStart;
  if (o.rangeEnd) ipam.range_end = o.rangeEnd;
  return JSON.stringify({ cniVersion: "1.0.0", name: o.network, type: "bridge", ipam });
}

/** CNI_ARGS for a call: whereabouts needs K8S_POD_NAME (and takes K8S_POD_NAMESPACE for the podRef). */
export function whereaboutsCniArgs(namespace: string, pod: string): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`;
}
