// Which store holds the pool: etcd when `etcdConfig` is present, else the embedded file store.
import { parseEndpoint } from "../lib/endpoint.ts";
import { ConfigError } from "./errors.ts";
import { quote } from "../lib/quote.ts";

export const DEFAULT_DATA_DIR = "/var/lib/cni/kube-ipam";
export const DEFAULT_ETCD_PREFIX = "/kube-ipam";

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

export type StoreConfig = FileStoreConfig | EtcdStoreConfig;

type Obj = Record<string, unknown>;

function str(obj: Obj, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new ConfigError(`ipam.etcdConfig.${key}`, `expected a string, got ${quote(v)}`);
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

export function parseStoreConfig(ipam: Obj): StoreConfig {
  const etcd = ipam.etcdConfig;
  if (etcd === undefined || etcd === null) {
    const dataDir = ipam.dataDir;
    if (dataDir !== undefined && (typeof dataDir !== "string" || dataDir === "")) {
      throw new ConfigError("ipam.dataDir", `expected a directory path, got ${quote(dataDir)}`);
    }
    return { kind: "file", dataDir: (dataDir as string | undefined) ?? DEFAULT_DATA_DIR };
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
