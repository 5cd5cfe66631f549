// `kube-ipam gc --conf FILE [--dry-run] [--grace DURATION] [--max-release 50%|N] [--kubeconfig FILE] [-o json]`:
// release the addresses whose pod is gone from the Kubernetes API, in every network of the store.
import { type ClusterLister, collectGarbage, type GcReport, type Leak } from "../ipam/collect_garbage.ts";
import type { KubeClient } from "../k8s/client.ts";
import { KubeUnavailableError } from "../k8s/errors.ts";
import {
  DEFAULT_RELEASE_LIMIT, describeRefusals, formatReleaseLimit, type ReleaseLimit,
} from "../ipam/release_guard.ts";
import { openStore } from "../store/open.ts";
import { clusterClient } from "./cluster.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { outputFormat, type ParsedFlags, RefusedError, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";

export const DEFAULT_GRACE_MS = 5 * 60_000;

/** The flags gc takes a value for. */
export const GC_VALUED = ["conf", "o", "output", "grace", "kubeconfig", "max-release"];

/** `--max-release`: `50%` (0% to 100%) or a number of addresses (`500`). */
export function parseReleaseLimit(text: string | undefined): ReleaseLimit {
  if (text === undefined) return DEFAULT_RELEASE_LIMIT;
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) return { count: Number(text) };
  throw new UsageError(`--max-release "${text}" is not a percentage from 0% to 100% or a number of addresses, e.g. 50% or 500`);
}

function describe(leak: Leak): string {
  const a = leak.allocation;
  return `${a.ip} (network ${a.network}) of pod ${a.podNamespace}/${a.podName}, container ${a.containerID.slice(0, 12)}: ${leak.reason}`;
}

function leakJSON(leak: Leak) {
  const a = leak.allocation;
  return { ip: a.ip, network: a.network, podNamespace: a.podNamespace, podName: a.podName, containerID: a.containerID,
    node: a.node, kind: a.kind, action: leak.action, reason: leak.reason };
}

export function renderReport(report: GcReport, dryRun: boolean, graceMs: number): string {
  const verb = (l: Leak) => (dryRun ? `would ${l.action}` : l.action === "park" ? "parked" : "released");
  const lines = report.done.map((l) => `${verb(l)} ${describe(l)}`);
  for (const l of report.withheld) lines.push(`${dryRun ? "would" : "refused to"} ${l.action} ${describe(l)}`);
  for (const l of report.changed) lines.push(`left alone (changed meanwhile) ${describe(l)}`);
  if (lines.length === 0) lines.push(`No leaked addresses (grace ${formatDuration(graceMs)})`);
  return `${lines.join("\n")}\n`;
}

/** Why the run was refused, and what to do about it. */
export function refusalMessage(report: GcReport, limit: ReleaseLimit, dryRun: boolean): string {
  return `${dryRun ? "The run would be refused" : "Refused"}: it would release more than --max-release ${formatReleaseLimit(limit)} ` +
    `(${describeRefusals(report.refusals)}), so ${dryRun ? "it would release" : "it released"} nothing in any network. ` +
    "A pod list that is nearly empty usually means the wrong cluster, a restored API server or missing RBAC rights: " +
    "check them; if the pods are really gone, run again with --max-release 100% (or a number of addresses)";
}

/**
 * The cluster's pods and StatefulSets from `kube`. Without --kubeconfig, run by hand on a node, gc finds the
 * node's kubeconfig, which is the CNI plugin's: it may get a pod, not list them all; a refusal (403) then
 * says what to do. (With --kubeconfig the API's message, which names the user, says enough.)
 */
function clusterLister(kube: KubeClient, kubeconfigFlag: string | undefined): ClusterLister {
  const hint = (e: unknown): never => {
    if (kubeconfigFlag === undefined && e instanceof KubeUnavailableError && e.status === 403) {
      throw new KubeUnavailableError(e.server, `${e.message}. gc reads every pod and StatefulSet of the cluster: pass --kubeconfig FILE ` +
        "with an identity that may list them (the controller's, or an operator's); a node's kubeconfig is the CNI plugin's, which may not",
      403, { cause: e });
    }
    throw e;
  };
  return {
    listPods: () => kube.listPods().catch(hint),
    listStatefulSets: () => kube.listStatefulSets().catch(hint),
  };
}

export async function gcCommand(flags: ParsedFlags): Promise<string> {
  const format = outputFormat(flags);
  const dryRun = flags.switches.has("dry-run");
  const graceMs = flags.values.has("grace") ? parseDuration(flags.values.get("grace")!, "--grace") : DEFAULT_GRACE_MS;
  const maxRelease = parseReleaseLimit(flags.values.get("max-release"));
  const config = loadConfFile(flags.values.get("conf"));
  const kube = await clusterClient(config, flags.values.get("kubeconfig"));
  const store = await openStore(config.store);
  try {
    const report = await collectGarbage(store, clusterLister(kube, flags.values.get("kubeconfig")), { graceMs, dryRun, maxRelease });
    const out = format === "json"
      ? `${JSON.stringify({
        dryRun,
        refused: report.refusals.length > 0 ? { maxRelease: formatReleaseLimit(maxRelease), networks: report.refusals } : null,
        done: report.done.map(leakJSON),
        withheld: report.withheld.map(leakJSON),
        changed: report.changed.map(leakJSON),
      }, null, 2)}\n`
      : renderReport(report, dryRun, graceMs);
    // A dry run exits as the real run would (1 when refused), with the same list on stdout.
    if (report.refusals.length > 0) throw new RefusedError(refusalMessage(report, maxRelease, dryRun), out);
    return out;
  } finally {
    await store.close();
  }
}
