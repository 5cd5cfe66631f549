// The history checker finds each kind of violation it claims to, and only those: histories written by
// hand (every etcd revision at a known time, a clock tick on each), and one made by the real plugin on a
// real etcd with a rogue write in it, read back through etcd's watch as a chaos run reads it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeRecord } from "../../src/store/record.ts";
import type { Allocation } from "../../src/store/store.ts";
import { startEtcd, type EtcdServer } from "../support/etcd.ts";
import { runPlugin } from "../support/plugin.ts";
import { check, hexOf, type Property, RevisionClock, SLACK_MS } from "./checker.ts";
import { runClock } from "./clock.ts";
import { readEtcdHistory } from "./etcd_history.ts";
import type { Call, ClockTick, EtcdEvent, History, LoggedRelease, PodEvent } from "./history.ts";
import { formatViolation } from "./report.ts";

const PREFIX = "/kube-ipam";
const NET = "chaos";
const T0 = 1_800_000_000_000;

/** A history written step by step: each etcd transaction gets the next revision, 10 ms after the last. */
class Story {
  readonly etcd: EtcdEvent[] = [];
  readonly clock: ClockTick[] = [];
  readonly calls: Call[] = [];
  readonly pods: PodEvent[] = [];
  readonly releases: LoggedRelease[] = [];
  rev = 1;

  /** The time of revision `r` (its clock tick was sent 1 ms before and acknowledged 1 ms after). */
  static time(r: number) {
    return T0 + r * 10;
  }

  get now() {
    return Story.time(this.rev);
  }

  txn(...events: Omit<EtcdEvent, "revision">[]) {
    this.rev++;
    for (const e of events) this.etcd.push({ ...e, revision: this.rev });
    this.clock.push({ sent: this.now - 1, revision: this.rev, end: this.now + 1 });
    return this.rev;
  }

  readonly #records = new Map<string, Allocation>();

  /** The record of `cid` holding `ip`, the same bytes each time (as it was claimed). */
  record(ip: string, cid: string, pod: string, uid = `uid-${pod}`): Allocation {
    const key = `${ip} ${cid}`;
    const known = this.#records.get(key);
    if (known) return known;
    const made: Allocation = { ip, network: NET, containerID: cid, ifName: "eth0", podNamespace: "chaos", podName: pod, podUID: uid, node: "h1", kind: "dynamic", rangeSet: 0, allocatedAt: new Date(this.now).toISOString() };
    this.#records.set(key, made);
    return made;
  }

  keys(ip: string, cid: string) {
    return { ip: `${PREFIX}/networks/${NET}/ips/4/${hexOf(ip)}`, owner: `${PREFIX}/networks/${NET}/owners/${cid}/eth0/4-${hexOf(ip)}` };
  }

  claim(ip: string, cid: string, pod: string) {
    const v = encodeRecord(this.record(ip, cid, pod));
    const k = this.keys(ip, cid);
    return this.txn({ type: "PUT", key: k.ip, value: v }, { type: "PUT", key: k.owner, value: v });
  }

  /** A claim and the ADD it answered: the address acknowledged to the runtime. */
  add(ip: string, cid: string, pod: string) {
    const start = this.now;
    this.claim(ip, cid, pod);
    return this.call("ADD", cid, pod, start, { ok: true, ip });
  }

  release(ip: string, cid: string, pod: string) {
    const v = encodeRecord(this.record(ip, cid, pod));
    const k = this.keys(ip, cid);
    return this.txn({ type: "DELETE", key: k.ip, value: v }, { type: "DELETE", key: k.owner, value: v });
  }

  leader(value: string | undefined) {
    const key = `${PREFIX}/controller/leader`;
    return this.txn(value === undefined ? { type: "DELETE", key } : { type: "PUT", key, value });
  }

  /** A call that began at `start` and ended now. */
  call(verb: "ADD" | "DEL", cid: string, pod: string, start: number, outcome: Call["outcome"], extra: Partial<Call> = {}) {
    this.tick();
    const c: Call = { id: this.calls.length + 1, verb, host: "h1", containerID: cid, ifName: "eth0", pod: `chaos/${pod}`, podUID: `uid-${pod}`, attempt: 1, start, end: this.now, budgetMs: 6000, outcome, ...extra };
    this.calls.push(c);
    return c;
  }

  podDeleted(pod: string) {
    this.tick();
    this.pods.push({ kind: "deleted", pod: `chaos/${pod}`, uid: `uid-${pod}`, start: this.now, end: this.now + 5 });
  }

  /** Time passes: a clock write of its own. */
  tick() {
    return this.txn({ type: "PUT", key: "/kube-ipam-chaos/clock", value: String(this.now) });
  }

  history(reserved: string[] = []): History {
    return {
      config: { seed: 42, durationMs: 60_000, prefix: PREFIX, network: NET, reserved, startedAt: T0 },
      calls: this.calls, pods: this.pods, faults: [], clock: this.clock, releases: this.releases, etcd: this.etcd,
    };
  }
}

const properties = (h: History): Property[] => check(h).violations.map((v) => v.property).sort();

/** A pod's whole life done right: ADD acknowledged, DEL acknowledged, then the pod deleted. */
function cleanLife(s: Story, ip: string, cid: string, pod: string) {
  s.add(ip, cid, pod);
  const delStart = s.now;
  s.release(ip, cid, pod);
  s.call("DEL", cid, pod, delStart, { ok: true });
  s.podDeleted(pod);
}

describe("the history checker", () => {
  test("a history of pods that came and went, an address reused after its DEL, finds nothing", () => {
    const s = new Story();
    cleanLife(s, "10.214.0.10", "c1", "p1");
    cleanLife(s, "10.214.0.10", "c2", "p2");
    const r = check(s.history());
    expect(r.violations).toEqual([]);
    expect(r.stats).toMatchObject({ acknowledgedAdds: 2, acknowledgedDels: 2, claims: 2 });
  });

  test("unique: an address acknowledged to a second pod while the first still lives", () => {
    const s = new Story();
    s.add("10.214.0.10", "c1", "p1");
    s.txn({ type: "DELETE", key: s.keys("10.214.0.10", "c1").ip, value: encodeRecord(s.record("10.214.0.10", "c1", "p1")) }); // a rogue write frees it
    s.add("10.214.0.10", "c2", "p2");
    const h = s.history();
    const r = check(h);
    expect(r.violations.map((v) => v.property).sort()).toEqual(["cause", "held", "index", "unique"]);
    const unique = r.violations.find((v) => v.property === "unique")!;
    expect(unique.message).toContain("10.214.0.10 was held by two live attachments at once: chaos/p1 (container c1");
    expect(unique.witness.calls.map((c) => c.containerID)).toEqual(["c1", "c2"]);
    const report = formatViolation(h, unique, "npm run chaos -- --seed 42 --minutes 1");
    expect(report).toContain("VIOLATION (unique)");
    expect(report).toContain("seed 42: npm run chaos -- --seed 42 --minutes 1");
    expect(report).toMatch(/ADD #1 c1 \(chaos\/p1\) on h1 -> 10\.214\.0\.10/);
    expect(report).toContain(`rev 4 DELETE ${s.keys("10.214.0.10", "c1").ip} (container c1, chaos/p1, dynamic)`);
  });

  test("unique: a second pod acknowledged after the first's DEL began holds no violation", () => {
    const s = new Story();
    s.add("10.214.0.10", "c1", "p1");
    const del = s.now;
    s.release("10.214.0.10", "c1", "p1");
    s.add("10.214.0.10", "c2", "p2");
    s.call("DEL", "c1", "p1", del, { ok: true }); // its answer arrives last
    expect(properties(s.history())).toEqual([]);
  });

  test("held: an acknowledged address released before its DEL, and released with no cause", () => {
    const s = new Story();
    s.add("10.214.0.11", "c1", "p1");
    s.release("10.214.0.11", "c1", "p1");
    s.tick();
    const del = s.now;
    s.call("DEL", "c1", "p1", del, { ok: true });
    const r = check(s.history());
    expect(r.violations.map((v) => v.property).sort()).toEqual(["cause", "held"]);
    expect(r.violations.find((v) => v.property === "held")!.message).toMatch(/10\.214\.0\.11 of chaos\/p1 \(container c1, .*\) was released at revision 4, .* before its DEL began/);
  });

  test("held: an acknowledgment with no claim in etcd behind it", () => {
    const s = new Story();
    const start = s.now;
    s.call("ADD", "c1", "p1", start, { ok: true, ip: "10.214.0.12" });
    expect(properties(s.history())).toEqual(["held"]);
  });

  test("held and cause: gc may release an acknowledged address only once its pod's deletion began", () => {
    const early = new Story();
    early.add("10.214.0.13", "c1", "p1");
    early.tick();
    early.release("10.214.0.13", "c1", "p1"); // a gc that did not wait for the pod's deletion
    early.podDeleted("p1");
    expect(properties(early.history())).toEqual(["cause", "held"]);

    const late = new Story();
    late.add("10.214.0.13", "c1", "p1");
    late.podDeleted("p1"); // its node died: no DEL
    late.release("10.214.0.13", "c1", "p1");
    expect(properties(late.history())).toEqual([]);
  });

  test("released: an acknowledged DEL that left its address held", () => {
    const s = new Story();
    s.add("10.214.0.14", "c1", "p1");
    const del = s.now;
    s.call("DEL", "c1", "p1", del, { ok: true });
    const r = check(s.history());
    expect(r.violations.map((v) => v.property)).toEqual(["released"]);
    expect(r.violations[0]!.message).toContain("10.214.0.14, claimed at revision 2 before it began, is still held");
  });

  test("released: a claim that landed after the DEL had answered is a late claim, not a broken DEL", () => {
    const s = new Story();
    const add = s.now;
    s.call("ADD", "c1", "p1", add, { ok: false, code: 11, msg: "etcd did not answer in time" });
    const del = s.now;
    s.call("DEL", "c1", "p1", del, { ok: true });
    s.claim("10.214.0.15", "c1", "p1"); // the ADD's request reached etcd late
    s.podDeleted("p1");
    s.release("10.214.0.15", "c1", "p1"); // and gc freed it
    const r = check(s.history());
    expect(r.violations).toEqual([]);
    expect(r.stats.lateClaims).toBe(1);
  });

  test("fenced: a controller's release committed while the leader key was another's, or no one's", () => {
    for (const other of ["c2/200", undefined]) {
      const s = new Story();
      s.leader("c1/100");
      s.add("10.214.0.16", "c9", "p9");
      s.podDeleted("p9");
      s.leader(undefined); // c1's lease expired while it was stopped
      if (other) s.leader(other);
      s.release("10.214.0.16", "c9", "p9");
      s.releases.push({ by: "c1/100", ip: "10.214.0.16", pod: "chaos/p9", action: "released" });
      const r = check(s.history());
      expect(r.violations.map((v) => v.property)).toEqual(["fenced"]);
      expect(r.violations[0]!.message).toMatch(other ? /when the leader key named c2\/200 \(term \d+\)$/ : /when the leader key named no one \(its lease had expired\)$/);
    }
  });

  test("fenced: a write of an earlier term committed in the same controller's next term", () => {
    const s = new Story();
    const first = s.leader("c1/100");
    s.add("10.214.0.21", "c9", "p9");
    s.podDeleted("p9");
    s.leader(undefined);
    const second = s.leader("c1/100"); // it won again: same identity, new term
    s.release("10.214.0.21", "c9", "p9");
    s.releases.push({ by: "c1/100", ip: "10.214.0.21", pod: "chaos/p9", action: "released", term: first });
    expect(check(s.history()).violations.map((v) => v.message)).toEqual([
      `c1/100 logged releasing 10.214.0.21 of chaos/p9 in term ${first}, committed at revision ${second + 1}, when the leader key named c1/100 (term ${second})`,
    ]);
    s.releases[0] = { ...s.releases[0]!, term: second };
    expect(check(s.history()).violations).toEqual([]);
  });

  test("fenced: a release by the current leader passes; one etcd never saw is reported", () => {
    const s = new Story();
    s.leader("c1/100");
    s.add("10.214.0.17", "c9", "p9");
    s.podDeleted("p9");
    s.release("10.214.0.17", "c9", "p9");
    s.releases.push({ by: "c1/100", ip: "10.214.0.17", pod: "chaos/p9", action: "released" });
    expect(properties(s.history())).toEqual([]);
    s.releases.push({ by: "c1/100", ip: "10.214.0.18", pod: "chaos/p8", action: "released" });
    expect(check(s.history()).violations.map((v) => v.message)).toEqual(["c1/100 logged releasing 10.214.0.18 of chaos/p8, but etcd's history has no such release"]);
  });

  test("cause: a claim no call ended and whose pod lives", () => {
    const s = new Story();
    s.claim("10.214.0.19", "c1", "p1"); // an ADD whose answer was lost: the runtime never heard of it
    s.release("10.214.0.19", "c1", "p1");
    const r = check(s.history());
    expect(r.violations.map((v) => v.property)).toEqual(["cause"]);
    expect(r.violations[0]!.message).toContain("with no cause: no call of its container and no deletion of its pod had begun");
  });

  test("budget: a call over its budget, a code that does not say why, no CNI answer at all", () => {
    const s = new Story();
    s.call("DEL", "c1", "p1", s.now - 6000 - SLACK_MS - 1, { ok: true });
    s.call("ADD", "c2", "p2", s.now, { ok: false, code: 999, msg: "Internal error: boom" });
    s.call("ADD", "c3", "p3", s.now, { ok: false, msg: "not JSON on stdout (exit 1): panic" });
    s.call("DEL", "c4", "p4", s.now, { ok: false, code: 11, msg: "etcd unreachable" }); // says why: allowed
    const r = check(s.history());
    expect(r.violations.map((v) => v.message)).toEqual([
      expect.stringMatching(/^DEL of c1 on h1 took \d+ ms, over its 6000 ms budget$/),
      "ADD of c2 on h1 failed with code 999: Internal error: boom",
      "ADD of c3 on h1 failed with no CNI error: not JSON on stdout (exit 1): panic",
    ]);
  });

  test("index: a claim without its owner entry, an owner entry left behind", () => {
    const s = new Story();
    const k = s.keys("10.214.0.20", "c1");
    const v = encodeRecord(s.record("10.214.0.20", "c1", "p1"));
    s.txn({ type: "PUT", key: k.ip, value: v });
    s.txn({ type: "PUT", key: k.owner, value: v });
    s.txn({ type: "DELETE", key: k.ip, value: v });
    expect(check(s.history()).violations.filter((m) => m.property === "index").map((m) => m.message)).toEqual([
      `revision 2: ${k.ip} is claimed by container c1 but its owner entry ${k.owner} is missing`,
      `revision 4: ${k.ip} was released but the owner entry ${k.owner} still names it`,
    ]);
  });

  test("index: an owner entry deleted while its claim stays", () => {
    const s = new Story();
    s.claim("10.214.0.22", "c1", "p1");
    const k = s.keys("10.214.0.22", "c1");
    s.txn({ type: "DELETE", key: k.owner, value: encodeRecord(s.record("10.214.0.22", "c1", "p1")) });
    expect(check(s.history()).violations.map((m) => m.message)).toEqual([
      `revision 3: owner entry ${k.owner} was deleted but ${k.ip} still holds its claim`,
    ]);
  });

  test("cause: a DEL that had answered before a late claim landed did not release it", () => {
    const s = new Story();
    const del = s.now;
    s.call("DEL", "c1", "p1", del, { ok: true });
    s.tick();
    s.claim("10.214.0.23", "c1", "p1"); // late
    s.release("10.214.0.23", "c1", "p1"); // by no one running
    expect(properties(s.history())).toEqual(["cause"]);
  });

  test("reserved: a claim of a reserved address", () => {
    const s = new Story();
    s.claim("10.214.0.30", "c1", "p1");
    expect(properties(s.history(["10.214.0.30"]))).toEqual(["reserved"]);
  });
});

describe("revision bounds", () => {
  test("a revision's commit lies between the ticks around it", () => {
    const clock = new RevisionClock([
      { sent: 100, revision: 10, end: 130 },
      { sent: 200, revision: 20, end: 260 },
      { sent: 300, revision: 30, end: 310 },
    ]);
    expect([clock.lo(15), clock.hi(15)]).toEqual([100, 260]);
    expect([clock.lo(20), clock.hi(20)]).toEqual([200, 260]); // the tick's own revision
    expect([clock.lo(5), clock.hi(5)]).toEqual([-Infinity, 130]);
    expect([clock.lo(35), clock.hi(35)]).toEqual([300, Infinity]);
  });
});

describe("the checker on a real etcd's history", () => {
  let etcd: EtcdServer;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), "kube-ipam-checker-"));
  });
  afterAll(async () => {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the plugin's claims and a rogue delete of one, read back through the watch, show the double holding", async () => {
    const ticks: ClockTick[] = [];
    const stop = new AbortController();
    const clocked = runClock(ticks, stop.signal, [etcd.endpoint]);
    const conf = {
      cniVersion: "1.0.0", name: NET, type: "bridge",
      ipam: { type: "kube-ipam", subnet: "10.214.0.0/24", etcdConfig: { etcdURL: etcd.endpoint, etcdPrefix: PREFIX }, agentSocket: "", logFile: join(dir, "log") },
    };
    const calls: Call[] = [];
    const add = async (cid: string, pod: string) => {
      const start = Date.now();
      const r = await runPlugin(conf, { command: "ADD", containerID: cid, args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=chaos;K8S_POD_NAME=${pod};K8S_POD_UID=uid-${pod};IP=10.214.0.77` });
      expect(r.exitCode).toBe(0);
      calls.push({ id: calls.length + 1, verb: "ADD", host: "h1", containerID: cid, ifName: "eth0", pod: `chaos/${pod}`, podUID: `uid-${pod}`, attempt: 1, start, end: Date.now(), budgetMs: 15_000, outcome: { ok: true, ip: r.json.ips[0].address.split("/")[0] } });
    };
    const waitTick = async () => {
      const n = ticks.length;
      while (ticks.length < n + 2) await Bun.sleep(20);
    };
    await add("c1", "p1");
    await waitTick();
    // What no kube-ipam write does: the claim deleted on its own, its owner entry left.
    const key = Buffer.from(`${PREFIX}/networks/${NET}/ips/4/${hexOf("10.214.0.77")}`).toString("base64");
    expect((await fetch(`${etcd.endpoint}/v3/kv/deleterange`, { method: "POST", body: JSON.stringify({ key }) })).ok).toBe(true);
    await waitTick();
    await add("c2", "p2");
    await waitTick();
    stop.abort();
    await clocked;
    const h: History = {
      config: { seed: 7, durationMs: 1000, prefix: PREFIX, network: NET, reserved: [], startedAt: calls[0]!.start },
      calls, pods: [], faults: [], clock: ticks, releases: [], etcd: await readEtcdHistory(etcd.endpoint),
    };
    const r = check(h);
    expect(r.violations.map((v) => v.property).sort()).toEqual(["cause", "held", "index", "unique"]);
    expect(r.violations.find((v) => v.property === "unique")!.message).toContain("10.214.0.77 was held by two live attachments at once: chaos/p1 (container c1");
  });
});
