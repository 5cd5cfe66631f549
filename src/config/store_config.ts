// Which store holds the pool: `ipam.datastore` when set ("kubernetes", "etcd" or "file"); else etcd when
// `etcdConfig` is present, else the embedded file store.
import { parseEndpoint } from "../lib/endpoint.ts";
import { ConfigError } from "./errors.ts";
import { quote } from "../lib/quote.ts";

export const DEFAULT_DATA_DIR = "/var/lib/cni/kube-ipam";
export const DEFAULT_ETCD_PREFIX = "/kube-ipam";
export const DEFAULT_KUBECONFIG = "/etc/kubernetes/pki/kubectl.kubeconfig";
export const DEFAULT_LEASE_NAMESPACE = "kube-system";
export const DATASTORES = ["kubernetes", "etcd", "file"] as const;
export type Datastore = (typeof DATASTORES)[number];

export interface FileStoreConfig {
  readonly kind: "file";
  readonly dataDir: string;
}

export interface EtcdStoreConfig {
  readonly kind: "etcd";
  readonly endpoints: readonly string[];
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile?: string;
  readonly prefix: string;
  /** Also honour and write kube-ipam v0.2's layout, while v0.2 plugins may still run (store/etcd/legacy_v02.ts). */
  readonly legacyV02?: boolean;
}

export interface KubernetesStoreConfig {
  readonly kind: "kubernetes";
  /** ipam.kubeConfig; undefined: inside a pod its service account, else DEFAULT_KUBECONFIG when it exists. */
  readonly kubeConfig?: string;
  /** Where the controllers' leader Lease lives (ipam.leaseNamespace). */
  readonly leaseNamespace: string;
}

export type StoreConfig = FileStoreConfig | EtcdStoreConfig | KubernetesStoreConfig;

type Obj = Record<string, unknown>;

function str(obj: Obj, key: string, field = `ipam.etcdConfig.${key}`): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new ConfigError(field, `expected a string, got ${quote(v)}`);
  return v;
}

function parseEndpoints(raw: string): string[] {
  const endpoints = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new ConfigError("ipam.etcdConfig.etcdURL", "no endpoint given");
  return endpoints.map((e) => {
    const parsed = parseEndpoint(e);
    if ("endpoint" in parsed) return parsed.endpoint;
    throw new ConfigError("ipam.etcdConfig.etcdURL", parsed.problem === "more than scheme, host, port and path"
      ? `${quote(e)}: only scheme, host, port and path are allowed`
      : `${quote(e)} is not an http:// or https:// URL`);
  });
}

/** The store `ipam.datastore` names, or the default: etcd when etcdConfig is set, else file. */
export function parseStoreConfig(ipam: Obj): StoreConfig {
  const named = ipam.datastore;
  if (named !== undefined && named !== null && !DATASTORES.includes(named as Datastore)) {
    throw new ConfigError("ipam.datastore", `expected one of ${DATASTORES.map((d) => `"${d}"`).join(", ")}, got ${quote(named)}`);
  }
  const hasEtcd = ipam.etcdConfig !== undefined && ipam.etcdConfig !== null;
  return parseStoreConfigOf(ipam, (named as Datastore | undefined) ?? (hasEtcd ? "etcd" : "file"));
}

/**
 * The configuration of store `kind` from the same ipam section, whichever `datastore` names (kube-ipam
 * migrate reads both sides of a move from one network config).
 */
export function parseStoreConfigOf(ipam: Obj, kind: Datastore): StoreConfig {
  if (kind === "kubernetes") {
    const kubeConfig = str(ipam, "kubeConfig", "ipam.kubeConfig");
    const leaseNamespace = str(ipam, "leaseNamespace", "ipam.leaseNamespace") ?? DEFAULT_LEASE_NAMESPACE;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(leaseNamespace)) {
      throw new ConfigError("ipam.leaseNamespace", `${quote(leaseNamespace)} is not a Kubernetes namespace name`);
    }
    return { kind, ...(kubeConfig && { kubeConfig }), leaseNamespace };
  }
  const etcd = ipam.etcdConfig;
  if (kind === "file") {
    const dataDir = ipam.dataDir;
    if (dataDir !== undefined && (typeof dataDir !== "string" || dataDir === "")) {
      throw new ConfigError("ipam.dataDir", `expected a directory path, got ${quote(dataDir)}`);
    }
    return { kind: "file", dataDir: (dataDir as string | undefined) ?? DEFAULT_DATA_DIR };
  }
  if (etcd === undefined || etcd === null) {
    throw new ConfigError("ipam.etcdConfig", 'required when ipam.datastore is "etcd": an object with etcdURL');
  }
  if (typeof etcd !== "object" || Array.isArray(etcd)) {
    throw new ConfigError("ipam.etcdConfig", "expected an object with etcdURL");
  }
  const e = etcd as Obj;
  const url = str(e, "etcdURL");
  if (!url) throw new ConfigError("ipam.etcdConfig.etcdURL", "required: comma-separated etcd endpoints");
  const certFile = str(e, "etcdCertFile");
  const keyFile = str(e, "etcdKeyFile");
  // The seed spells it etcdTrustedCAFileFile; both spellings are accepted.
  const caFile = str(e, "etcdTrustedCAFileFile") ?? str(e, "etcdTrustedCAFile");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("ipam.etcdConfig", "etcdCertFile and etcdKeyFile go together: set both or neither");
  }
  let prefix = str(e, "etcdPrefix") ?? DEFAULT_ETCD_PREFIX;
  if (!prefix.startsWith("/")) prefix = `/${prefix}`;
  prefix = prefix.replace(/\/+$/, "") || DEFAULT_ETCD_PREFIX;
  const legacyV02 = e.legacyV02;
  if (legacyV02 !== undefined && typeof legacyV02 !== "boolean") {
    throw new ConfigError("ipam.etcdConfig.legacyV02", `expected true or false, got ${quote(legacyV02)}`);
  }
  return { kind: "etcd", endpoints: parseEndpoints(url), certFile, keyFile, caFile, prefix, ...(legacyV02 && { legacyV02 }) };
}
