// `kube-ipam gc --conf FILE [--dry-run] [--grace DURATION] [--kubeconfig FILE] [-o json]`: release the
// addresses whose pod is gone from the Kubernetes API, in every network of the store.
import { collectGarbage, type GcReport, type Leak } from "../ipam/collect_garbage.ts";
import { openStore } from "../store/open.ts";
import { clusterClient } from "./cluster.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { outputFormat, type ParsedFlags } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";

export const DEFAULT_GRACE_MS = 5 * 60_000;

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
  for (const l of report.changed) lines.push(`left alone (changed meanwhile) ${describe(l)}`);
  if (lines.length === 0) lines.push(`No leaked addresses (grace ${formatDuration(graceMs)})`);
  return `${lines.join("\n")}\n`;
}

export async function gcCommand(flags: ParsedFlags): Promise<string> {
  const format = outputFormat(flags);
  const dryRun = flags.switches.has("dry-run");
  const graceMs = flags.values.has("grace") ? parseDuration(flags.values.get("grace")!, "--grace") : DEFAULT_GRACE_MS;
  const config = loadConfFile(flags.values.get("conf"));
  const kube = await clusterClient(config, flags.values.get("kubeconfig"));
  const store = await openStore(config.store);
  try {
    const report = await collectGarbage(store, kube, { graceMs, dryRun });
    if (format === "json") {
      return `${JSON.stringify({ dryRun, done: report.done.map(leakJSON), changed: report.changed.map(leakJSON) }, null, 2)}\n`;
    }
    return renderReport(report, dryRun, graceMs);
  } finally {
    await store.close();
  }
}
