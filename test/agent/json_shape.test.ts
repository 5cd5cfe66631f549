// The structure check that guards JSON.parse of lines from anyone (src/agent/json_shape.ts): it counts exactly
// the structure JSON.parse would build, strings whatever their content never count, and a request passes.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MAX_STRUCTURE, shallowEnough } from "../../src/agent/json_shape.ts";
import { FORWARDED_ENV } from "../../src/agent/protocol.ts";

/** The { [ : , a value's JSON text has outside strings, counted from the value. */
function structure(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(v.length - 1, 0) + v.reduce((n: number, x) => n + structure(x), 0);
  if (v !== null && typeof v === "object") {
    const values = Object.values(v);
    return 1 + values.length + Math.max(values.length - 1, 0) + values.reduce((n: number, x) => n + structure(x), 0);
  }
  return 0;
}

describe("shallowEnough", () => {
  test("is true exactly when the value has at most MAX_STRUCTURE structural characters (property)", () => {
    // Strings full of the characters counted, quotes and escapes: only structure outside them counts.
    const text = fc.string({ unit: fc.constantFrom("{", "[", ":", ",", '"', "\\", "a", "\u00e9", "\n") });
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, text, fc.integer(), fc.constant(null), fc.array(tie("v"), { maxLength: 40 }),
        fc.dictionary(text, tie("v"), { maxKeys: 40 })),
    })).v;
    fc.assert(fc.property(value, (v) => {
      expect(shallowEnough(JSON.stringify(v))).toBe(structure(v) <= MAX_STRUCTURE);
    }), { numRuns: 2000 });
  });

  test("a request with every forwarded variable set and a large config passes", () => {
    const config = JSON.stringify({ cniVersion: "1.0.0", name: "n", ipam: { ranges: Array.from({ length: 5000 }, (_, i) => [{ subnet: `10.${i % 256}.0.0/24` }]) } });
    const line = JSON.stringify({
      build: "0.1.0+x", startedAt: 1, acceptBy: 2, hostname: "h",
      env: Object.fromEntries(FORWARDED_ENV.map((k) => [k, "{[:,]}"])), stdin: config,
    });
    expect(shallowEnough(line)).toBe(true);
  });

  test("a megabyte of tiny values does not", () => {
    expect(shallowEnough(`[${"{},".repeat(350_000)}0]`)).toBe(false);
    expect(shallowEnough(`{${'"a":0,'.repeat(170_000)}"b":0}`)).toBe(false);
  });
});
