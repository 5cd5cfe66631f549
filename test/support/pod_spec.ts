// A pod spec's container as kubelet would run it, translated to `podman run` arguments, so that the image
// tests run deploy/'s containers exactly as the manifests say (command, args, env, mounts, security
// context, host network) instead of hand-copied command lines.
//
//   const volumes = materializeVolumes(podSpec, ctx, hostPaths, dir);   // secrets, config maps: files
//   const argv = containerArgv(podSpec, container, ctx, volumes);       // ["run", "--name", ...]
//
// A field this translator does not understand is an error, not silently dropped: a manifest that gains
// one must be emulated (or listed as ignored, with the reason) before the image tests pass again.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

type Any = any;

/** What kubelet knows about the pod beyond its spec. */
export interface PodContext {
  readonly podName: string;
  readonly namespace: string;
  readonly nodeName: string;
  /** Kubelet's service environment (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT): set before the container's env. */
  readonly serviceEnv: Readonly<Record<string, string>>;
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The service account token and CA a pod gets at /var/run/secrets/kubernetes.io/serviceaccount. */
  readonly serviceAccount?: { readonly token: string; readonly caCrt: string };
  /** The manifest's image name -> the image the test built. */
  readonly images: Readonly<Record<string, string>>;
  /** Extra `podman run` options (labels for clean-up, ulimits); they come before the image. */
  readonly extraOptions?: readonly string[];
}

export type VolumeSource =
  | { readonly kind: "bind"; readonly path: string; readonly alwaysReadOnly: boolean }
  | { readonly kind: "tmpfs"; readonly sizeBytes?: number };

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const SERVICE_ACCOUNT_VOLUME = "kube-api-access (automounted)";

// Fields with no effect on one container run by a test on one host, and why.
const IGNORED_POD = new Set(["priorityClassName", "tolerations", "affinity",
  "serviceAccountName" /* ctx.serviceAccount is that account's token (deploy_pods.ts picks it) */,
  "terminationGracePeriodSeconds" /* used by stopTimeout() */, "dnsPolicy" /* resolv.conf only */,
  "automountServiceAccountToken" /* read by materializeVolumes */]);
const HANDLED_POD = new Set(["hostNetwork", "securityContext", "initContainers", "containers", "volumes"]);
const IGNORED_CONTAINER = new Set(["name", "imagePullPolicy" /* the image is local: --pull never */,
  "ports" /* host network; probes read them */, "readinessProbe", "livenessProbe" /* the tests poll them */]);
const HANDLED_CONTAINER = new Set(["image", "command", "args", "env", "resources", "securityContext", "volumeMounts"]);

function checkKeys(obj: Any, handled: Set<string>, ignored: Set<string>, where: string): void {
  for (const key of Object.keys(obj ?? {})) {
    if (!handled.has(key) && !ignored.has(key)) throw new Error(`${where}: field "${key}" is not emulated by test/support/pod_spec.ts`);
  }
}

/**
 * Kubernetes' expansion of `$(VAR)` in env values, command and args: `$$` is a literal `$`, `$(NAME)` of a
 * defined variable is its value, an undefined one stays as written; any other `$` is left alone.
 */
export function expandVars(input: string, vars: ReadonlyMap<string, string>): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c !== "$" || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1]!;
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const close = input.indexOf(")", i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += vars.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** A Kubernetes quantity (`512Mi`, `1Gi`, `100M`, `1024`) in bytes. */
export function quantityBytes(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`Cannot parse quantity "${q}"`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Math.ceil(Number(m[1]) * unit);
}

/** The container's environment in kubelet's order: service variables, then env, each value expanded. */
export function containerEnv(container: Any, ctx: PodContext): Map<string, string> {
  const vars = new Map(Object.entries(ctx.serviceEnv));
  for (const e of container.env ?? []) {
    let value: string;
    if (e.value !== undefined) value = expandVars(String(e.value), vars);
    else if (e.valueFrom?.fieldRef) value = fieldRef(e.valueFrom.fieldRef.fieldPath, ctx);
    else if (e.valueFrom?.secretKeyRef) value = keyRef(ctx.secrets, "Secret", e.valueFrom.secretKeyRef);
    else if (e.valueFrom?.configMapKeyRef) value = keyRef(ctx.configMaps, "ConfigMap", e.valueFrom.configMapKeyRef);
    else throw new Error(`env "${e.name}": neither value nor a supported valueFrom`);
    vars.set(e.name, value);
  }
  return vars;
}

function fieldRef(path: string, ctx: PodContext): string {
  const fields: Record<string, string> = { "spec.nodeName": ctx.nodeName, "metadata.name": ctx.podName, "metadata.namespace": ctx.namespace };
  const v = fields[path];
  if (v === undefined) throw new Error(`fieldRef "${path}" is not emulated`);
  return v;
}

function keyRef(store: PodContext["secrets"], kind: string, ref: { name: string; key: string; optional?: boolean }): string {
  const v = store[ref.name]?.[ref.key];
  if (v === undefined) throw new Error(`${kind} "${ref.name}" has no key "${ref.key}"`);
  return v;
}

/** The effective security context: the container's fields over the pod's. */
function security(pod: Any, container: Any): Any {
  return { ...(pod.securityContext ?? {}), ...(container.securityContext ?? {}) };
}

/** `podman run` arguments (without "podman") for `container` of `pod`, detached. */
export function containerArgv(pod: Any, container: Any, ctx: PodContext, volumes: ReadonlyMap<string, VolumeSource>): string[] {
  checkKeys(pod, HANDLED_POD, IGNORED_POD, "pod spec");
  checkKeys(container, HANDLED_CONTAINER, IGNORED_CONTAINER, `container "${container.name}"`);
  const image = ctx.images[container.image];
  if (image === undefined) throw new Error(`container "${container.name}": no image stands for "${container.image}"`);
  const argv = ["run", "--detach", "--name", `${ctx.podName}-${container.name}`, "--pull", "never"];
  argv.push("--stop-timeout", String(pod.terminationGracePeriodSeconds ?? 30));
  if (pod.hostNetwork) argv.push("--network", "host", "--uts", "host");

  const env = containerEnv(container, ctx);
  for (const [k, v] of env) argv.push("--env", `${k}=${v}`);

  argv.push(...securityArgs(pod, container));
  const memory = container.resources?.limits?.memory;
  if (memory !== undefined) argv.push("--memory", String(quantityBytes(memory)));
  for (const key of Object.keys(container.resources?.limits ?? {})) {
    if (key !== "memory") throw new Error(`container "${container.name}": limit "${key}" is not emulated`);
  }

  const mounts = [...(container.volumeMounts ?? [])];
  if (pod.automountServiceAccountToken !== false && volumes.has(SERVICE_ACCOUNT_VOLUME) &&
    !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
    mounts.push({ name: SERVICE_ACCOUNT_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true });
  }
  for (const m of mounts) {
    checkKeys(m, new Set(["name", "mountPath", "readOnly"]), new Set(), `volumeMount "${m.name}"`);
    const v = volumes.get(m.name);
    if (!v) throw new Error(`container "${container.name}": volume "${m.name}" is not defined`);
    if (v.kind === "bind") {
      argv.push("--volume", `${v.path}:${m.mountPath}:${m.readOnly || v.alwaysReadOnly ? "ro" : "rw"}`);
    } else {
      // emptyDir: a directory anyone in the pod may write (0777), here in memory.
      const size = v.sizeBytes === undefined ? "" : `,tmpfs-size=${v.sizeBytes}`;
      argv.push("--mount", `type=tmpfs,destination=${m.mountPath},tmpfs-mode=0777${size}${m.readOnly ? ",ro=true" : ""}`);
    }
  }
  argv.push(...(ctx.extraOptions ?? []));

  // command replaces the image's ENTRYPOINT, args its CMD; command without args runs no CMD.
  if (container.command !== undefined) argv.push("--entrypoint", JSON.stringify(container.command.map((s: string) => expandVars(s, env))));
  argv.push(image);
  argv.push(...(container.args ?? []).map((s: string) => expandVars(s, env)));
  return argv;
}

function securityArgs(pod: Any, container: Any): string[] {
  const sc = security(pod, container);
  checkKeys(sc, new Set(["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups",
    "readOnlyRootFilesystem", "allowPrivilegeEscalation", "capabilities", "privileged"]), new Set(), `securityContext of "${container.name}"`);
  const out: string[] = [];
  if (sc.runAsNonRoot && (sc.runAsUser === undefined || sc.runAsUser === 0)) {
    throw new Error(`container "${container.name}": runAsNonRoot and runs as root: kubelet refuses to start it`);
  }
  if (sc.runAsUser !== undefined) out.push("--user", sc.runAsGroup === undefined ? `${sc.runAsUser}` : `${sc.runAsUser}:${sc.runAsGroup}`);
  // Kubelet adds fsGroup and supplementalGroups to the container's groups.
  for (const g of [...(sc.fsGroup === undefined ? [] : [sc.fsGroup]), ...(sc.supplementalGroups ?? [])]) out.push("--group-add", String(g));
  // Kubernetes' read-only root has no writable /tmp or /run unless a volume provides one; podman's
  // --read-only would add tmpfs mounts there.
  if (sc.readOnlyRootFilesystem) out.push("--read-only", "--read-only-tmpfs=false");
  if (sc.allowPrivilegeEscalation === false) out.push("--security-opt", "no-new-privileges");
  if (sc.privileged) out.push("--privileged");
  for (const c of sc.capabilities?.drop ?? []) out.push("--cap-drop", c);
  for (const c of sc.capabilities?.add ?? []) out.push("--cap-add", c);
  return out;
}

function writeVolumeFiles(dir: string, data: Readonly<Record<string, string>>, items: Any[] | undefined,
  defaultMode: number, fsGroup: number | undefined, what: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const entries = items ?? Object.keys(data).map((key) => ({ key, path: key }));
  for (const item of entries) {
    const value = data[item.key];
    if (value === undefined) throw new Error(`${what} has no key "${item.key}"`);
    const file = join(dir, item.path);
    writeFileSync(file, value);
    // As kubelet's atomic writer and volume ownership do: the item's mode or defaultMode; with fsGroup,
    // owned by that group and group-readable (these volumes are read-only).
    chmodSync(file, (item.mode ?? defaultMode) | (fsGroup === undefined ? 0 : 0o440));
    if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
  }
  if (fsGroup !== undefined) chownSync(dir, 0, fsGroup);
}

/**
 * The pod's volumes on this machine: hostPath -> `hostPaths[path]` (made when the type says OrCreate),
 * secret and configMap -> files written under `dir` with their modes, emptyDir -> tmpfs, and the service
 * account's token when the pod mounts it.
 */
export function materializeVolumes(pod: Any, ctx: PodContext, hostPaths: Readonly<Record<string, string>>, dir: string): Map<string, VolumeSource> {
  const out = new Map<string, VolumeSource>();
  const fsGroup: number | undefined = pod.securityContext?.fsGroup;
  for (const v of pod.volumes ?? []) {
    const where = `volume "${v.name}"`;
    if (v.hostPath) {
      const local = hostPaths[v.hostPath.path];
      if (local === undefined) throw new Error(`${where}: no stand-in for host path "${v.hostPath.path}"`);
      if (v.hostPath.type === "DirectoryOrCreate") mkdirSync(local, { recursive: true, mode: 0o755 });
      else if (v.hostPath.type !== undefined && v.hostPath.type !== "Directory") throw new Error(`${where}: hostPath type "${v.hostPath.type}" is not emulated`);
      out.set(v.name, { kind: "bind", path: local, alwaysReadOnly: false });
    } else if (v.secret || v.configMap) {
      const [kind, src, data] = v.secret
        ? ["Secret", v.secret, ctx.secrets[v.secret.secretName]]
        : ["ConfigMap", v.configMap, ctx.configMaps[v.configMap.name]];
      const name = v.secret ? src.secretName : src.name;
      if (data === undefined) throw new Error(`${where}: ${kind} "${name}" does not exist`);
      const local = join(dir, v.name);
      writeVolumeFiles(local, data, src.items, src.defaultMode ?? 0o644, fsGroup, `${kind} "${name}"`);
      out.set(v.name, { kind: "bind", path: local, alwaysReadOnly: true });
    } else if (v.emptyDir) {
      const limit = v.emptyDir.sizeLimit;
      out.set(v.name, { kind: "tmpfs", sizeBytes: limit === undefined ? undefined : quantityBytes(limit) });
    } else {
      throw new Error(`${where}: this volume type is not emulated`);
    }
  }
  if (pod.automountServiceAccountToken !== false && ctx.serviceAccount) {
    const local = join(dir, "serviceaccount");
    const files = { token: ctx.serviceAccount.token, "ca.crt": ctx.serviceAccount.caCrt, namespace: ctx.namespace };
    writeVolumeFiles(local, files, undefined, 0o644, fsGroup, "service account");
    out.set(SERVICE_ACCOUNT_VOLUME, { kind: "bind", path: local, alwaysReadOnly: true });
  }
  return out;
}

/** The URL kubelet's httpGet probe reads, on a host-network pod: a named port is the container's port. */
export function probeUrl(container: Any, probe: Any): string {
  const get = probe?.httpGet;
  if (!get) throw new Error(`container "${container.name}": the probe is not an httpGet probe`);
  const port = typeof get.port === "number" ? get.port
    : (container.ports ?? []).find((p: Any) => p.name === get.port)?.containerPort;
  if (port === undefined) throw new Error(`container "${container.name}": no port named "${get.port}"`);
  return `${(get.scheme ?? "HTTP").toLowerCase()}://127.0.0.1:${port}${get.path ?? "/"}`;
}
