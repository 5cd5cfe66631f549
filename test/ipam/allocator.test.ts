import { describe, expect, test } from "bun:test";
import { type Family, formatIP, type IP, parseIP } from "../../src/ip/address.ts";
import { type FreeAddressFinder, HeldIndex } from "../../src/ip/held_index.ts";
import { IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";
import { canonicalizeRange, type RawRange } from "../../src/ip/range.ts";
import { type RangeSet, rangeSetKey } from "../../src/ip/range_set.ts";
import { allocateDynamic, freeAddresses, type Pool, startingCursor } from "../../src/ipam/allocator.ts";
import { PoolExhaustedError } from "../../src/ipam/errors.ts";
import type { Allocation, ClaimOptions, ClaimOutcome, HeldWindow, NetworkStore } from "../../src/store/store.ts";

/** The part of NetworkStore that freeAddresses and allocateDynamic use. */
type ScanStore = Pick<NetworkStore, "network" | "shared" | "claimBeforeRead" | "heldBetween" | "countHeldBlocks" | "cursor" | "claim">;

/**
 * An in-memory store of that part. `racers` are addresses another node claims between our scan and
 * our claim: invisible to heldBetween, lost on claim.
 */
class FakeStore implements ScanStore {
  readonly network = "net";
  /** Shared by several nodes (etcd): a node without a cursor starts at a point of its own. */
  shared = false;
  /** As etcd: claim the first candidate before reading; a lost claim answers its readOnLoss. */
  claimBeforeRead = false;
  /** The readOnLoss answered by lost claims. */
  readonly readsOnLoss: { from: bigint; to: bigint }[] = [];
  readonly held = new Map<string, Allocation>();
  readonly racers = new Map<string, Allocation>();
  readonly cursors = new Map<string, IP>();
  readonly reads: { from: bigint; to: bigint; limit: number }[] = [];

  /** Cursors by node: these tests use one range set at a time (the key is checked where it matters). */
  constructor(held: string[] = [], cursor?: { node: string; ip: string }) {
    for (const ip of held) this.held.set(formatIP(parseIP(ip)), record(ip, "other"));
    if (cursor) this.cursors.set(cursor.node, parseIP(cursor.ip));
  }

  /** What the store's process last saw held (the node agent's view), when set. */
  view: HeldIndex | undefined;

  heldView(): FreeAddressFinder | undefined {
    return this.view;
  }

  /** Set: answer for this many addresses at a time, as the file store's probes do; else as etcd, up to `limit` held. */
  probe: bigint | undefined;

  heldBetween(family: Family, from: bigint, to: bigint, limit: number): Promise<HeldWindow> {
    this.reads.push({ from, to, limit });
    const end = this.probe !== undefined && from + this.probe - 1n < to ? from + this.probe - 1n : to;
    const ips = [...this.held.keys()].map(parseIP)
      .filter((ip) => ip.family === family && ip.value >= from && ip.value <= end)
      .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
    if (this.probe !== undefined) return Promise.resolve({ held: ips, through: end });
    const held = ips.slice(0, limit);
    return Promise.resolve({ held, through: ips.length >= limit ? held[limit - 1]!.value : to });
  }

  readonly counts: { from: bigint; to: bigint }[] = [];

  countHeldBlocks(family: Family, from: bigint, to: bigint, size: bigint, blocks: number): Promise<number[]> {
    this.counts.push({ from, to });
    const held = [...this.held.keys()].map(parseIP).filter((ip) => ip.family === family);
    const counts: number[] = [];
    for (let a = from, i = 0; a <= to && i < blocks; a += size, i++) {
      const b = a + size - 1n < to ? a + size - 1n : to;
      counts.push(held.filter((ip) => ip.value >= a && ip.value <= b).length);
    }
    return Promise.resolve(counts);
  }

  readonly cursorKeys: string[] = [];

  cursor(node: string, rangeSetKey: string): Promise<IP | undefined> {
    this.cursorKeys.push(rangeSetKey);
    return Promise.resolve(this.cursors.get(node));
  }

  claim(ip: IP, rec: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const key = formatIP(ip);
    const racer = this.racers.get(key);
    if (racer) {
      this.racers.delete(key);
      this.held.set(key, racer);
    }
    const holder = this.held.get(key);
    if (holder) {
      const lost = opts?.readOnLoss;
      if (!lost) return Promise.resolve({ claimed: false, holder });
      this.readsOnLoss.push({ from: lost.from, to: lost.to });
      const reads = this.reads.length;
      const counted = this.counts.length;
      const c = opts?.countOnLoss;
      return Promise.all([
        this.heldBetween(lost.family, lost.from, lost.to, lost.limit),
        c ? this.countHeldBlocks(c.family, c.from, c.to, c.size, c.blocks) : undefined,
      ]).then(([window, counts]) => {
        // answered by the claim, not by reads of their own
        this.reads.length = reads;
        this.counts.length = counted;
        return { claimed: false as const, holder, window, counts };
      });
    }
    this.held.set(key, rec);
    if (opts?.cursorKey) {
      this.cursorKeys.push(opts.cursorKey);
      this.cursors.set(rec.node, ip);
    }
    return Promise.resolve({ claimed: true });
  }

}

/** The fake as a NetworkStore: any other method is a test failure, loudly. */
function asStore(fake: FakeStore): NetworkStore {
  return new Proxy(fake, {
    get(target, key, receiver) {
      if (key in target) {
        const v = Reflect.get(target, key, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      }
      throw new Error(`FakeStore: ${String(key)} is not expected here`);
    },
  }) as unknown as NetworkStore;
}

function record(ip: string, containerID: string): Allocation {
  return {
    ip, network: "net", containerID, ifName: "eth0", node: "node-a", kind: "dynamic", rangeSet: 0,
    allocatedAt: "2024-01-01T00:00:00.000Z",
  };
}

/**
 * An IntervalSet that fails after too many lookups: a scan that steps through an excluded /65
 * address by address would otherwise hang the test run (the scan never yields to a timer).
 */
class BoundedSet extends IntervalSet {
  #lookups = 0;
  override find(ip: IP) {
    if (++this.#lookups > 100_000) throw new Error("the scan looked up 100,000 addresses: it did not skip excluded intervals");
    return super.find(ip);
  }
}

/** The record allocateDynamic fills in: everything but the address. */
function request(containerID: string): Omit<Allocation, "ip"> {
  const { ip: _ip, ...rest } = record("", containerID);
  return rest;
}

function pool(ranges: RawRange[], exclude: string[] = []): Pool {
  const set: RangeSet = ranges.map(canonicalizeRange);
  return { network: "net", set, index: 0, skip: new BoundedSet(exclude.map((e) => tryParseInterval(e)!)) };
}

/** The first `limit` free addresses, as text. */
async function free(store: FakeStore, p: Pool, cursor: string | undefined, limit = 1000): Promise<string[]> {
  const out: string[] = [];
  for await (const { ip } of freeAddresses(asStore(store), p, cursor === undefined ? undefined : parseIP(cursor))) {
    out.push(formatIP(ip));
    if (out.length >= limit) break;
  }
  return out;
}

describe("freeAddresses", () => {
  // 10.0.0.0/29: network .0, gateway .1, broadcast .7; the default range is .1-.6.
  const small = [{ subnet: "10.0.0.0/29" }];
  // [name, pool, held, cursor, expected]; a /64 is never walked to its end: the first few are compared.
  const cases: [string, Pool, string[], string | undefined, string[]][] = [
    ["empty pool: skips the gateway", pool(small), [], undefined, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]],
    ["held addresses skipped", pool(small), ["10.0.0.2", "10.0.0.4"], undefined, ["10.0.0.3", "10.0.0.5", "10.0.0.6"]],
    ["a range spanning the whole subnet: network, gateway and broadcast skipped",
      pool([{ subnet: "10.0.0.0/29", rangeStart: "10.0.0.0", rangeEnd: "10.0.0.7", gateway: "10.0.0.6" }]), [], undefined,
      ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]],
    ["exclude entries skipped", pool(small, ["10.0.0.3-10.0.0.4", "10.0.0.6"]), [], undefined, ["10.0.0.2", "10.0.0.5"]],
    ["exclude and held together", pool(small, ["10.0.0.2-10.0.0.3"]), ["10.0.0.4", "10.0.0.6"], undefined, ["10.0.0.5"]],
    ["exclude covering the subnet", pool(small, ["10.0.0.0/24"]), [], undefined, []],
    ["everything held", pool(small), ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"], undefined, []],
    ["round robin from the cursor, the cursor itself last", pool(small), [], "10.0.0.4",
      ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]],
    ["cursor at the end of the range", pool(small), [], "10.0.0.6", ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]],
    ["cursor in no range: from the start", pool(small), [], "10.0.0.200", ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]],
    ["spills into the next range, then wraps",
      pool([{ subnet: "10.0.0.0/29" }, { subnet: "10.0.1.0/29", rangeStart: "10.0.1.4" }]), ["10.0.0.6"], "10.0.0.5",
      ["10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]],
    ["cursor in the second range",
      pool([{ subnet: "10.0.0.0/29" }, { subnet: "10.0.1.0/29" }]), ["10.0.0.3"], "10.0.1.5",
      ["10.0.1.6", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"]],
    ["each range skips its own gateway",
      pool([{ subnet: "10.0.0.0/29", gateway: "10.0.0.6" }, { subnet: "10.0.1.0/29", gateway: "10.0.1.2" }]), [], undefined,
      ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.1.1", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"]],
    ["IPv6: no broadcast; the last address is free", pool([{ subnet: "fd00::/126" }]), [], undefined, ["fd00::2", "fd00::3"]],
    ["IPv6 /64 from a cursor, lazily", pool([{ subnet: "fd00::/64" }], ["fd00::1:2-fd00::1:3"]), ["fd00::1:5"], "fd00::1:0",
      ["fd00::1:1", "fd00::1:4", "fd00::1:6"]],
    ["IPv6 /64 mostly excluded: jumps over the exclude in one step",
      pool([{ subnet: "fd00::/64" }], ["fd00::/65", "fd00::8000:0:0:0-fd00::ffff:ffff:ffff:fffd"]), [], undefined,
      ["fd00::ffff:ffff:ffff:fffe", "fd00::ffff:ffff:ffff:ffff"]],
    ["IPv6 wraps at the end of a /64", pool([{ subnet: "fd00::/64" }]), [], "fd00::ffff:ffff:ffff:fffe",
      ["fd00::ffff:ffff:ffff:ffff", "fd00::2", "fd00::3"]],
  ];
  test.each(cases)("%s", async (_name, p, held, cursor, expected) => {
    const huge = p.set.some((r) => r.subnet.length <= 64 && r.subnet.network.family === 6);
    expect(await free(new FakeStore(held), p, cursor, huge ? expected.length : 1000)).toEqual(expected);
  });

  test("reads keys in windows of 64 and skips a dense run with counts", async () => {
    // 10.0.0.0/21, range .0.1-.7.254 (.1 is the gateway); 1,100 held from 10.0.0.2 on.
    const held: string[] = [];
    for (let i = 2n; i < 1102n; i++) held.push(formatIP({ family: 4, value: 0x0a000000n + i }));
    const store = new FakeStore(held);
    const p = pool([{ subnet: "10.0.0.0/21" }]);
    expect(await free(store, p, undefined, 3)).toEqual(["10.0.4.78", "10.0.4.79", "10.0.4.80"]); // 0x0a000000 + 1102 = 10.0.4.78
    // Keys are read only at the start and next to the gap; the run between is crossed with counts.
    expect(store.reads.map((r) => r.limit)).toEqual([64, 64]);
    expect(store.reads.map((r) => formatIP({ family: 4, value: r.from }))).toEqual(["10.0.0.1", "10.0.4.66"]);
    expect(store.counts.length).toBe(3); // 16 blocks of 64, then of 1024, then down to 64 inside the one with the gap
  });

  test("a store that probes a few addresses at a time: the next free one costs one probe window", async () => {
    const store = new FakeStore(["10.0.0.5", "10.0.0.6"], undefined);
    store.probe = 8n;
    const p = pool([{ subnet: "10.0.0.0/24" }]);
    expect(await free(store, p, "10.0.0.4", 1)).toEqual(["10.0.0.7"]);
    expect(store.reads.map((r) => formatIP({ family: 4, value: r.from }))).toEqual(["10.0.0.5"]);
    expect(store.counts).toEqual([]);
  });

  test("a store that probes: a window with free addresses in it is no dense run, whatever its last address", async () => {
    const store = new FakeStore(["10.0.0.9"]);
    store.probe = 8n;
    const p = pool([{ subnet: "10.0.0.0/24" }]);
    expect(await free(store, p, "10.0.0.1", 10)).toEqual(
      ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.10", "10.0.0.11", "10.0.0.12"],
    );
    expect(store.counts).toEqual([]);
  });

  test("a store that probes: a dense run is crossed with counts, not probed address by address", async () => {
    const held: string[] = [];
    for (let i = 2n; i < 1102n; i++) held.push(formatIP({ family: 4, value: 0x0a000000n + i }));
    const store = new FakeStore(held);
    store.probe = 8n;
    const p = pool([{ subnet: "10.0.0.0/21" }]);
    expect(await free(store, p, undefined, 2)).toEqual(["10.0.4.78", "10.0.4.79"]);
    // One probe window at the start, one next to the gap (the counts narrow it to 64 addresses, probed 8 at a time).
    expect(store.reads.length).toBeLessThanOrEqual(1 + 64 / 8 + 1);
    expect(store.counts.length).toBe(3);
  });

  test("a dense run up to the end of the range ends the segment", async () => {
    const held: string[] = [];
    for (let i = 2n; i <= 700n; i++) held.push(formatIP({ family: 4, value: 0x0a000000n + i }));
    const p = pool([{ subnet: "10.0.0.0/22", rangeEnd: formatIP({ family: 4, value: 0x0a000000n + 700n }) }]);
    expect(await free(new FakeStore(held), p, undefined)).toEqual([]);
  });

  test("a full window ending on the last address of the range", async () => {
    // 512 held fill whole windows up to the last address; the scan must still end.
    const held: string[] = [];
    for (let i = 2n; i <= 513n; i++) held.push(formatIP({ family: 4, value: 0x0a000000n + i }));
    const p = pool([{ subnet: "10.0.0.0/22", rangeEnd: formatIP({ family: 4, value: 0x0a000000n + 513n }) }]);
    expect(await free(new FakeStore(held), p, undefined)).toEqual([]);
  });
});

/** allocateDynamic as ADD calls it: with the node's cursor read beforehand. */
async function allocate(store: FakeStore, p: Pool, r: ReturnType<typeof request>, random = () => 0) {
  return allocateDynamic(asStore(store), p, r, await store.cursor(r.node, rangeSetKey(p.set)), random);
}

describe("allocateDynamic", () => {
  const rec = request("c1");

  test("claims the first free address after the cursor and moves the cursor", async () => {
    const store = new FakeStore(["10.0.0.5"], { node: "node-a", ip: "10.0.0.4" });
    const { allocation, range } = await allocate(store, pool([{ subnet: "10.0.0.0/29" }]), rec);
    expect(allocation.ip).toBe("10.0.0.6");
    expect(allocation.containerID).toBe("c1");
    expect(range.subnet.length).toBe(29);
    expect(store.held.get("10.0.0.6")).toEqual(allocation);
    expect(formatIP(store.cursors.get("node-a")!)).toBe("10.0.0.6");
    // The cursor belongs to the range set by name, not by position (runtimeConfig.ipRanges shifts positions).
    expect(store.cursorKeys.at(-1)).toBe("0a000001-0a000006");

    const second = await allocate(store, pool([{ subnet: "10.0.0.0/29" }]), request("c2"));
    expect(second.allocation.ip).toBe("10.0.0.2"); // .6 ended the range: wrap to its start
  });

  test("a lost race moves on to the next address", async () => {
    const store = new FakeStore();
    store.racers.set("10.0.0.2", record("10.0.0.2", "other"));
    store.racers.set("10.0.0.3", record("10.0.0.3", "other"));
    const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/29" }]), rec);
    expect(allocation.ip).toBe("10.0.0.4");
  });

  test("after a lost race it jumps ahead, recording the conflict", async () => {
    const store = new FakeStore();
    store.racers.set("10.0.0.2", record("10.0.0.2", "other"));
    const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/28" }]), rec, () => 0.3); // jump 2
    expect(allocation.ip).toBe("10.0.0.5");
    expect(allocation.conflicts).toBe(1);
  });

  describe("a store where a lost claim costs no more than a read (etcd)", () => {
    test("claims the address after the cursor without reading first", async () => {
      const store = new FakeStore([], { node: "node-a", ip: "10.0.0.4" });
      store.claimBeforeRead = true;
      const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/28" }]), rec);
      expect(allocation.ip).toBe("10.0.0.5");
      expect(store.reads).toEqual([]);
      expect(allocation.conflicts).toBeUndefined();
    });

    test("the first guess skips excluded addresses and the gateway", async () => {
      const store = new FakeStore([], { node: "node-a", ip: "10.0.0.14" });
      store.claimBeforeRead = true;
      const p = pool([{ subnet: "10.0.0.0/28" }], ["10.0.0.2-10.0.0.4"]);
      // .14 ends the range: wrap to .1 (the gateway), then .2-.4 are excluded.
      expect((await allocate(store, p, rec)).allocation.ip).toBe("10.0.0.5");
      expect(store.reads).toEqual([]);
    });

    test("a lost guess brings the window it needs: no read of its own, then the next free address", async () => {
      const store = new FakeStore(["10.0.0.6"], { node: "node-a", ip: "10.0.0.4" });
      store.claimBeforeRead = true;
      store.racers.set("10.0.0.5", record("10.0.0.5", "other"));
      const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/28" }]), rec, () => 0); // no jump
      expect(allocation.ip).toBe("10.0.0.7");
      expect(allocation.conflicts).toBe(1);
      expect(store.readsOnLoss.map((r) => formatIP({ family: 4, value: r.from }))).toEqual(["10.0.0.5"]);
      expect(store.reads).toEqual([]);
    });

    test("a guess lost to an older holder is no conflict and no reason to jump", async () => {
      const store = new FakeStore(["10.0.0.5"], { node: "node-a", ip: "10.0.0.4" }); // held since 2024-01-01
      store.claimBeforeRead = true;
      const later = { ...rec, allocatedAt: "2024-06-01T00:00:00.000Z" };
      const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/28" }]), later, () => 0.99);
      expect(allocation.ip).toBe("10.0.0.6");
      expect(allocation.conflicts).toBeUndefined();
    });

    test("a guess lost to a claim made since the ADD began is a race: a conflict and a jump", async () => {
      const store = new FakeStore([], { node: "node-a", ip: "10.0.0.4" });
      store.claimBeforeRead = true;
      store.racers.set("10.0.0.5", record("10.0.0.5", "other"));
      const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/28" }]), rec, () => 0.3); // jump 2
      expect(allocation.ip).toBe("10.0.0.8");
    });

    test("a guess lost in a dense run brings the counts too: the gap is found without a count request of its own", async () => {
      // .2 to .199 held after the cursor .1; the first window (64 keys) is all held.
      const held: string[] = [];
      for (let i = 2; i < 200; i++) held.push(`10.0.0.${i}`);
      const store = new FakeStore(held, { node: "node-a", ip: "10.0.0.1" });
      store.claimBeforeRead = true;
      const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/24" }]), { ...rec, allocatedAt: "2024-06-01T00:00:00.000Z" });
      expect(allocation.ip).toBe("10.0.0.200");
      expect(store.counts).toEqual([]);
      expect(store.reads.length).toBe(1); // the window at the gap, then the claim
    });

    test("a full pool still ends in PoolExhaustedError", async () => {
      const held = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"];
      const store = new FakeStore(held, { node: "node-a", ip: "10.0.0.3" });
      store.claimBeforeRead = true;
      await expect(allocate(store, pool([{ subnet: "10.0.0.0/29" }]), rec)).rejects.toBeInstanceOf(PoolExhaustedError);
    });
  });

  describe("a store that keeps a view of what is held (the node agent)", () => {
    /** A view that saw `ips` held. */
    const viewOf = (ips: readonly string[]) => new HeldIndex(ips.map(parseIP));
    const dense = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `10.0.0.${from + i}`);

    for (const claimBeforeRead of [false, true]) {
      const kind = claimBeforeRead ? "etcd" : "embedded store";
      test(`${kind}: in a dense pool the view's first free address is claimed at once, with no read`, async () => {
        const held = dense(2, 249); // only .250 to .254 free
        const store = new FakeStore(held, { node: "node-a", ip: "10.0.0.1" });
        store.claimBeforeRead = claimBeforeRead;
        store.view = viewOf(held);
        const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/24" }]), rec);
        expect(allocation.ip).toBe("10.0.0.250");
        expect([store.reads, store.counts, store.readsOnLoss]).toEqual([[], [], []]);
        expect(formatIP(store.cursors.get("node-a")!)).toBe("10.0.0.250");
      });

      test(`${kind}: a stale view (an address taken since) costs a lost claim, then the store's reads find the next`, async () => {
        const held = dense(2, 249);
        const store = new FakeStore([...held, "10.0.0.250"], { node: "node-a", ip: "10.0.0.1" });
        store.claimBeforeRead = claimBeforeRead;
        store.view = viewOf(held); // has not seen .250 taken
        const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/24" }]), rec, () => 0);
        expect(allocation.ip).toBe("10.0.0.251");
      });

      test(`${kind}: a view that saw every address held is not believed: the store's reads find the one freed since`, async () => {
        const store = new FakeStore(dense(2, 253), { node: "node-a", ip: "10.0.0.1" });
        store.claimBeforeRead = claimBeforeRead;
        store.view = viewOf(dense(1, 254));
        expect((await allocate(store, pool([{ subnet: "10.0.0.0/24" }]), rec)).allocation.ip).toBe("10.0.0.254");
      });
    }

    test("the view's candidate is one the pool hands out: excluded addresses and the gateway are skipped, in round-robin order", async () => {
      const store = new FakeStore(["10.0.0.13"], { node: "node-a", ip: "10.0.0.12" });
      store.view = viewOf(["10.0.0.13"]);
      const p = pool([{ subnet: "10.0.0.0/28" }], ["10.0.0.14", "10.0.0.2-10.0.0.4"]);
      // After .12: .13 held, .14 excluded, end of range; wrap: .1 the gateway, .2-.4 excluded.
      expect((await allocate(store, p, rec)).allocation.ip).toBe("10.0.0.5");
      expect(store.reads).toEqual([]);
    });
  });

  test("a jump never hides the last free addresses of the pool", async () => {
    const store = new FakeStore();
    store.racers.set("10.0.0.2", record("10.0.0.2", "other"));
    const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/29" }]), rec, () => 0.99); // jump 7: past the end
    expect(allocation.ip).toBe("10.0.0.3");
  });

  test("finding its own earlier claim is not a conflict", async () => {
    const store = new FakeStore();
    const mine = { ...record("10.0.0.2", "c1"), allocatedAt: "earlier" };
    store.racers.set("10.0.0.2", mine);
    const { allocation } = await allocate(store, pool([{ subnet: "10.0.0.0/29" }]), rec);
    expect(allocation).toEqual(mine);
  });

  test("an exhausted pool names the network and its ranges", async () => {
    const store = new FakeStore(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
    const p = pool([{ subnet: "10.0.0.0/29" }], ["10.0.0.6"]);
    const err = await allocate(store, p, rec).catch((e) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect(err.message).toBe(
      'No free address in network "net" range set 10.0.0.0/29 (10.0.0.1-10.0.0.6): release unused addresses (kube-ipam ls) or add a range',
    );
  });
});

describe("startingCursor (shared pools)", () => {
  const two = pool([{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }, { subnet: "10.0.1.0/24" }]);

  test("lies in a range of the set and depends only on the node name", () => {
    const nodes = Array.from({ length: 50 }, (_, i) => `node-${i}`);
    const starts = nodes.map((n) => startingCursor(two.set, n));
    for (const ip of starts) {
      expect(two.set.some((r) => ip.family === 4 && ip.value >= r.rangeStart.value && ip.value <= r.rangeEnd.value)).toBe(true);
    }
    expect(nodes.map((n) => formatIP(startingCursor(two.set, n)))).toEqual(starts.map(formatIP));
    expect(new Set(starts.map(formatIP)).size).toBeGreaterThan(25); // spread, not all on one address
  });

  test("IPv6 /64", () => {
    const p = pool([{ subnet: "fd00::/64" }]);
    const ip = startingCursor(p.set, "node-a");
    expect(ip.family).toBe(6);
    expect(ip.value >= p.set[0]!.rangeStart.value && ip.value <= p.set[0]!.rangeEnd.value).toBe(true);
  });

  test("a shared store without a cursor starts after the node's point; an unshared one at the start", async () => {
    const p = pool([{ subnet: "10.0.0.0/16" }]);
    const rec = request("c1");
    const start = startingCursor(p.set, rec.node);
    const expected = [...(await free(new FakeStore(), p, formatIP(start), 1))][0];

    const shared = new FakeStore();
    shared.shared = true;
    expect((await allocate(shared, p, rec)).allocation.ip).toBe(expected!);

    expect((await allocate(new FakeStore(), p, rec)).allocation.ip).toBe("10.0.0.2");
  });

  test("a cursor, once there, wins over the node's point", async () => {
    const store = new FakeStore([], { node: "node-a", ip: "10.0.0.40" });
    store.shared = true;
    const rec = request("c1");
    expect((await allocate(store, pool([{ subnet: "10.0.0.0/24" }]), rec)).allocation.ip).toBe("10.0.0.41");
  });
});
