// The fault plan: the same seed gives the same plan; every fault lies inside the run's quiet margins; the cuts
// never overlap one another; and 90 s (the run in npm test) hold every kind of cut and of degraded link.
import { describe, expect, test } from "bun:test";
import { CUT_KINDS, LINK_KINDS, planFaults } from "./schedule.ts";

describe("the fault plan", () => {
  test("is the seed's: the same seed the same plan, another seed another", () => {
    expect(planFaults(7, 90_000)).toEqual(planFaults(7, 90_000));
    expect(planFaults(8, 90_000)).not.toEqual(planFaults(7, 90_000));
  });

  for (const seed of [0, 1, 2, 3, 42, 1234567, 2 ** 31 - 1]) {
    test(`seed ${seed}: inside the margins, cuts one at a time, every kind in 90 s`, () => {
      const plan = planFaults(seed, 90_000);
      for (const f of plan) {
        expect(f.at).toBeGreaterThanOrEqual(4000);
        expect(f.at + f.durationMs).toBeLessThanOrEqual(90_000 - 6000);
      }
      const cuts = plan.filter((f) => (CUT_KINDS as readonly string[]).includes(f.kind));
      for (let i = 1; i < cuts.length; i++) expect(cuts[i]!.at).toBeGreaterThan(cuts[i - 1]!.at + cuts[i - 1]!.durationMs);
      expect(new Set(cuts.map((f) => f.kind))).toEqual(new Set(CUT_KINDS));
      expect(new Set(plan.map((f) => f.kind).filter((k) => (LINK_KINDS as readonly string[]).includes(k)))).toEqual(new Set(LINK_KINDS));
      expect(plan.map((f) => f.id)).toEqual(plan.map((_, i) => i + 1));
    });
  }
});
