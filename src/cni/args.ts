// CNI_ARGS: "K=V;K=V". Unknown keys are refused unless IgnoreUnknown is set, as libcni's LoadArgs does.
import { CniError, ErrorCode } from "./errors.ts";
import { quote } from "../lib/quote.ts";

export interface CniArgs {
  readonly podNamespace?: string;
  readonly podName?: string;
  readonly podInfraContainerID?: string;
  readonly podUID?: string;
  /** IP=, comma-separated, as written (parsed with the config). */
  readonly ips: readonly string[];
}

const KNOWN = new Set(["IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID", "IP"]);

function isTrue(v: string): boolean {
  return ["1", "true", "t"].includes(v.toLowerCase());
}

export function parseCniArgs(raw: string): CniArgs {
  const pairs = new Map<string, string>();
  for (const item of raw.split(";")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: invalid pair "${item}": expected KEY=VALUE`);
    }
    pairs.set(item.slice(0, eq), item.slice(eq + 1));
  }
  const unknown = [...pairs.keys()].filter((k) => !KNOWN.has(k));
  if (unknown.length > 0 && !isTrue(pairs.get("IgnoreUnknown") ?? "")) {
    throw new CniError(ErrorCode.InvalidEnvironment,
      `CNI_ARGS: unknown args ${quote(unknown)}: set IgnoreUnknown=1 to allow them`);
  }
  const get = (k: string) => {
    const v = pairs.get(k);
    return v === undefined || v === "" ? undefined : v;
  };
  return {
    podNamespace: get("K8S_POD_NAMESPACE"),
    podName: get("K8S_POD_NAME"),
    podInfraContainerID: get("K8S_POD_INFRA_CONTAINER_ID"),
    podUID: get("K8S_POD_UID"),
    ips: (get("IP") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""),
  };
}
