// The short chaos run of npm test: the whole bed (3 etcd members, 4 plugin hosts with their agents, 2
// controllers, the real kube-apiserver) for 90 s under every kind of fault, and the checker over the
// history. A new seed each run (KUBE_IPAM_CHAOS_SEED replays one); a failure prints it with the part of the
// history that shows the violation. Longer runs: npm run chaos -- --minutes N (docs/faults.md).
import { expect, test } from "bun:test";
import { CUT_KINDS, LINK_KINDS } from "./schedule.ts";
import { runChaos } from "./run.ts";

const seed = Number(process.env.KUBE_IPAM_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`90 s of partitions, pauses and bad links under a concurrent workload break no property (seed ${seed})`, async () => {
  const run = await runChaos({ seed, durationMs: 90_000, log: (l) => console.log(l) });
  console.log(run.summary);
  expect(run.reports.join("\n\n")).toBe("");
  const s = run.result.stats;
  // The run did what it is for: every fault applied and healed, pods came and went, gc and leaders at work.
  expect(new Set(run.history.faults.map((f) => f.kind))).toEqual(new Set([...CUT_KINDS, ...LINK_KINDS]));
  expect(s.acknowledgedAdds).toBeGreaterThan(100);
  expect(s.acknowledgedDels).toBeGreaterThan(100);
  expect(s.controllerReleases).toBeGreaterThan(0);
  expect(s.leaderTerms).toBeGreaterThan(1);
  expect(run.gcRuns.ok).toBeGreaterThan(0);
  expect(run.history.calls.some((c) => c.fixed && !c.outcome.ok && c.outcome.code === 101)).toBe(true);
}, 240_000);
