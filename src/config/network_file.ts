// Network configs as files and stdin: decode the bytes, and pick kube-ipam's plugin from a conflist.
import { ConfigError, DecodeError } from "./errors.ts";

export function decodeNetworkConfig(text: string, source = "stdin"): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`Cannot decode network config from ${source}: ${(e as Error).message}`, { cause: e });
  }
}

type Obj = Record<string, unknown>;

/**
 * From a .conf or .conflist document, the network config whose ipam.type is kube-ipam, shaped as
 * a runtime would pass it (conflist name and cniVersion carried into the plugin entry).
 */
export function selectKubeIpamConfig(doc: unknown, source: string): Obj {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new ConfigError(source, "expected a JSON object");
  }
  const d = doc as Obj;
  if (!Array.isArray(d.plugins)) return d;
  const plugin = d.plugins.find((p) => (p as Obj)?.ipam && ((p as Obj).ipam as Obj).type === "kube-ipam") as Obj | undefined;
  if (!plugin) throw new ConfigError(`${source} plugins`, 'no plugin has "ipam": {"type": "kube-ipam"}');
  return { ...plugin, name: d.name, cniVersion: d.cniVersion };
}
