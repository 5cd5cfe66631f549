// Where the Kubernetes API is and how to authenticate to it: from a kubeconfig file, or from inside a pod.
// Only what one HTTPS GET needs: server, CA, bearer token or client certificate.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { KubeConfigError } from "./errors.ts";
import { isRecord } from "../lib/is_record.ts";

export { KubeConfigError };

/** A resolved API endpoint and credentials, file contents already read. */
export interface KubeConfig {
  /** Where it came from: the kubeconfig path, or "in-cluster". */
  readonly source: string;
  /** API server URL without a trailing slash, e.g. "https://10.0.0.1:6443". */
  readonly server: string;
  /** PEM bundle the server certificate must chain to; undefined means the system's roots. */
  readonly ca?: string;
  readonly insecureSkipTLSVerify: boolean;
  readonly token?: string;
  /** File the token came from; long-running clients re-read it, as service account tokens rotate. */
  readonly tokenFile?: string;
  /** PEM client certificate and key. */
  readonly cert?: string;
  readonly key?: string;
}


export interface InClusterOptions {
  /** Defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly tokenFile?: string;
  readonly caFile?: string;
}

/** Where a pod's service account token and CA are mounted. */
export const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
type Dict = Readonly<Record<string, unknown>>;

/**
 * Reads a kubeconfig the way kubectl does: current-context (or the only context), its cluster and user;
 * `*-data` fields win over file paths; relative paths are relative to the kubeconfig's directory.
 *
 * @example
 * const config = await loadKubeConfig("/etc/kubernetes/pki/kubectl.kubeconfig");
 */
export async function loadKubeConfig(path: string): Promise<KubeConfig> {
  const fail = (msg: string, cause?: unknown): never => {
    throw new KubeConfigError(path, `Cannot load kubeconfig "${path}": ${msg}`, { cause });
  };
  const text = readText(path, (reason, cause) => fail(reason, cause));
  // Bun's built-in parser: the `yaml` package cost about 14 ms per plugin start (measured in a
  // compiled binary), Bun.YAML about 1 ms.
  let doc: unknown;
  try {
    doc = Bun.YAML.parse(text);
  } catch (e) {
    fail(`invalid YAML: ${firstLine(e)}`, e);
  }
  if (!isRecord(doc)) return fail("not a kubeconfig: the document is not a mapping");
  const dir = dirname(resolve(path));

  const contexts = named(doc, "contexts", "context", fail);
  let contextName = optString(doc, "current-context", "current-context", fail);
  if (!contextName) {
    if (contexts.size !== 1) {
      fail(contexts.size === 0 ? "no contexts" : `no current-context and ${contexts.size} contexts to choose from`);
    }
    contextName = [...contexts.keys()][0]!;
  }
  const context = contexts.get(contextName) ?? fail(`context "${contextName}" not found`);
  const where = `context "${contextName}"`;

  const clusterName = optString(context, "cluster", `cluster of ${where}`, fail) ?? fail(`${where} has no cluster`);
  const cluster = named(doc, "clusters", "cluster", fail).get(clusterName) ??
    fail(`cluster "${clusterName}" of ${where} not found`);
  const inCluster = `cluster "${clusterName}"`;
  const server = optString(cluster, "server", `server of ${inCluster}`, fail) ?? fail(`${inCluster} has no server`);
  if (!/^https?:\/\/[^/]/.test(server) || !URL.canParse(server)) {
    fail(`server "${server}" of ${inCluster} is not an http:// or https:// URL`);
  }
  const insecure = cluster["insecure-skip-tls-verify"] ?? false;
  if (typeof insecure !== "boolean") fail(`insecure-skip-tls-verify of ${inCluster} is not true or false`);
  const ca = material(cluster, "certificate-authority", inCluster, dir, fail);

  const config = { source: path, server: server.replace(/\/+$/, ""), ca, insecureSkipTLSVerify: insecure as boolean };
  const userName = optString(context, "user", `user of ${where}`, fail);
  if (!userName) return config; // anonymous, as kubectl allows
  const user = named(doc, "users", "user", fail).get(userName) ?? fail(`user "${userName}" of ${where} not found`);
  return { ...config, ...credentials(user, `user "${userName}"`, dir, fail) };
}

type Fail = (msg: string, cause?: unknown) => never;

function credentials(user: Dict, where: string, dir: string, fail: Fail) {
  const cert = material(user, "client-certificate", where, dir, fail);
  const key = material(user, "client-key", where, dir, fail);
  if (cert && !key) fail(`${where} has client-certificate but no client-key`);
  if (key && !cert) fail(`${where} has client-key but no client-certificate`);
  let token = optString(user, "token", `token of ${where}`, fail);
  let tokenFile: string | undefined;
  if (!token) {
    const file = optString(user, "tokenFile", `tokenFile of ${where}`, fail);
    if (file) {
      tokenFile = resolve(dir, file);
      const cannot = `cannot read tokenFile "${tokenFile}" of ${where}`;
      token = readText(tokenFile, (reason, cause) => fail(`${cannot}: ${reason}`, cause)).trim();
    }
  }
  if (!token && !cert) {
    const other = ["exec", "auth-provider", "username"].find((f) => user[f] !== undefined);
    if (other) {
      fail(`${where} authenticates with ${other}, which kube-ipam does not support: ` +
        "use token, tokenFile or client-certificate");
    }
  }
  return { token: token || undefined, tokenFile, cert, key };
}

/**
 * Builds the config a pod gets from its service account, as client-go's InClusterConfig does.
 * Throws KubeConfigError outside a pod.
 */
export function inClusterConfig(options: InClusterOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const tokenFile = options.tokenFile ?? `${SA_DIR}/token`;
  const caFile = options.caFile ?? `${SA_DIR}/ca.crt`;
  const fail = (msg: string, cause?: unknown): never => {
    throw new KubeConfigError("in-cluster", `Cannot load in-cluster Kubernetes config: ${msg}`, { cause });
  };
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) fail("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a pod?");
  const token = readText(tokenFile, (reason, cause) => fail(`cannot read token "${tokenFile}": ${reason}`, cause)).trim();
  const ca = readText(caFile, (reason, cause) => fail(`cannot read CA "${caFile}": ${reason}`, cause));
  if (!isPem(ca)) fail(`CA "${caFile}" is not PEM`);
  const server = `https://${host!.includes(":") ? `[${host}]` : host}:${port}`;
  return { source: "in-cluster", server, ca, insecureSkipTLSVerify: false, token, tokenFile };
}

/** `field-data` (base64) or `field` (a path), PEM either way. */
function material(obj: Dict, field: string, where: string, dir: string, fail: Fail): string | undefined {
  const data = optString(obj, `${field}-data`, `${field}-data of ${where}`, fail);
  if (data) {
    const pem = Buffer.from(data, "base64").toString("utf8");
    if (!isPem(pem)) fail(`${field}-data of ${where} is not base64-encoded PEM`);
    return pem;
  }
  const file = optString(obj, field, `${field} of ${where}`, fail);
  if (!file) return undefined;
  const path = resolve(dir, file);
  const pem = readText(path, (reason, cause) => fail(`cannot read ${field} "${path}" of ${where}: ${reason}`, cause));
  if (!isPem(pem)) fail(`${field} "${path}" of ${where} is not PEM`);
  return pem;
}

/** A kubeconfig list of `{name, <entry>: {...}}`, by name. */
function named(doc: Dict, list: string, entry: string, fail: Fail): Map<string, Dict> {
  const items = doc[list] ?? [];
  if (!Array.isArray(items)) fail(`${list} is not a list`);
  const out = new Map<string, Dict>();
  for (const item of items as unknown[]) {
    if (!isRecord(item) || typeof item.name !== "string") fail(`${list} has an entry without a name`);
    const { name } = item as Dict & { name: string };
    const value = (item as Dict)[entry] ?? {};
    if (!isRecord(value)) fail(`${entry} of ${entry} "${name}" is not a mapping`);
    out.set(name, value as Dict);
  }
  return out;
}

function optString(obj: Dict, field: string, what: string, fail: Fail): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail(`${what} is not a string`);
  return v as string;
}

function readText(path: string, fail: (reason: string, cause: unknown) => never): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "file does not exist"
      : code === "EACCES" ? "permission denied"
      : code === "EISDIR" ? "is a directory"
      : String((e as Error).message);
    return fail(reason, e);
  }
}

function isPem(text: string): boolean {
  return text.includes("-----BEGIN ");
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split("\n")[0]!.replace(/:$/, "");
}
