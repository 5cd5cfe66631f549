// HeldIndex: the agent's sorted view of held addresses, against a plain Set as the model.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HeldIndex } from "../../src/ip/held_index.ts";

type Op = { kind: "add" | "delete"; value: number } | { kind: "nextFree"; from: number; to: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom("add" as const, "delete" as const), value: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ kind: fc.constant("nextFree" as const), from: fc.integer({ min: 0, max: 40 }), to: fc.integer({ min: 0, max: 45 }) }),
);

describe("HeldIndex", () => {
  test("add, delete, has and nextFree agree with a set, in any order and with duplicates", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 40 })), fc.array(op, { maxLength: 60 }), (initial, ops) => {
      const index = new HeldIndex(initial.map((v) => ({ family: 4 as const, value: BigInt(v) })));
      const model = new Set(initial);
      expect(index.size).toBe(model.size);
      for (const o of ops) {
        if (o.kind === "add") {
          index.add(4, BigInt(o.value));
          model.add(o.value);
        } else if (o.kind === "delete") {
          index.delete(4, BigInt(o.value));
          model.delete(o.value);
        } else if (o.kind === "nextFree") {
          let c = o.from;
          while (c <= o.to && model.has(c)) c++;
          expect(index.nextFree(4, BigInt(o.from), BigInt(o.to))).toBe(c <= o.to ? BigInt(c) : undefined);
        }
      }
      for (let v = 0; v <= 40; v++) expect(index.has(4, BigInt(v))).toBe(model.has(v));
      expect(index.size).toBe(model.size);
    }));
  });

  test("the families are apart: an IPv6 address with an IPv4 address's value is another address", () => {
    const index = new HeldIndex([{ family: 6, value: 5n }]);
    expect(index.has(4, 5n)).toBe(false);
    expect(index.nextFree(4, 5n, 5n)).toBe(5n);
    expect(index.nextFree(6, 5n, 6n)).toBe(6n);
  });

  test("an IPv6 /64's addresses past 2^53 are exact", () => {
    const base = 0xfd00_0000_0000_0000_0000_0000_0000_0000n;
    const index = new HeldIndex([{ family: 6, value: base + 2n ** 60n }, { family: 6, value: base + 2n ** 60n + 1n }]);
    expect(index.nextFree(6, base + 2n ** 60n, base + 2n ** 61n)).toBe(base + 2n ** 60n + 2n);
  });
});
