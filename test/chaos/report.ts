// A run's summary and, for each violation, the seed that replays it and the part of the history that shows it.
import type { CheckResult, Violation } from "./checker.ts";
import type { History } from "./history.ts";
import { decodeRecord } from "../../src/store/record.ts";

/** An allocation record as who holds it; any other value as it is. */
function describeValue(value: string): string {
  const r = decodeRecord(value);
  if (!r) return value.slice(0, 120);
  return `(container ${r.containerID}, ${r.podNamespace}/${r.podName}, ${r.kind}${r.parkedAt ? ", parked" : ""})`;
}

export function formatSummary(h: History, r: CheckResult): string {
  const s = r.stats;
  const faults = new Map<string, number>();
  for (const f of h.faults) faults.set(f.kind, (faults.get(f.kind) ?? 0) + 1);
  const failed = Object.entries(s.failedCalls).map(([k, n]) => `${k}: ${n}`).join(", ") || "none";
  return [
    `seed ${h.config.seed}, ${(h.config.durationMs / 1000).toFixed(0)} s: ${s.calls} calls (${s.acknowledgedAdds} ADDs and ${s.acknowledgedDels} DELs acknowledged; failed: ${failed}), longest ${s.longestCallMs} ms`,
    `  ${h.pods.filter((p) => p.kind === "created").length} pods; ${s.claims} claims in ${s.revisions} etcd revisions; ${s.controllerReleases} releases by controllers in ${s.leaderTerms} leader terms; ${s.lateClaims} claims committed after their ADD had answered`,
    `  ${h.faults.length} faults: ${[...faults].map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `  ${r.violations.length === 0 ? "no violations" : `${r.violations.length} violations`}`,
  ].join("\n");
}

export function formatViolation(h: History, v: Violation, rerun: string): string {
  const at = (t: number) => `+${((t - h.config.startedAt) / 1000).toFixed(3)}s`;
  const lines: [number, string][] = [];
  for (const c of v.witness.calls) {
    const out = c.outcome.ok ? (c.outcome.ip ? `-> ${c.outcome.ip}` : "-> ok") : `-> code ${c.outcome.code ?? "none"}: ${c.outcome.msg.slice(0, 160)}`;
    lines.push([c.start, `${at(c.start)} .. ${at(c.end)}  ${c.verb} #${c.attempt} ${c.containerID} (${c.pod}${c.fixed ? `, fixed ${c.fixed}` : ""}) on ${c.host} ${out}`]);
  }
  for (const p of v.witness.pods) lines.push([p.start, `${at(p.start)} .. ${at(p.end)}  pod ${p.pod} (${p.uid}) ${p.kind}`]);
  for (const f of v.witness.faults) lines.push([f.start, `${at(f.start)} .. ${at(f.end)}  fault #${f.id} ${f.kind}: ${f.what}`]);
  lines.sort((a, b) => a[0] - b[0]);
  const etcd = v.witness.etcd.map((e) => `  rev ${e.revision} ${e.type} ${e.key}${e.value ? ` ${describeValue(e.value)}` : ""}`);
  return [
    `VIOLATION (${v.property}): ${v.message}`,
    `  seed ${h.config.seed}: ${rerun}`,
    ...lines.map(([, l]) => `  ${l}`),
    ...(etcd.length ? ["  etcd:", ...etcd.map((l) => `  ${l}`)] : []),
  ].join("\n");
}
