// The history checker: reads what a chaos run recorded (history.ts) and proves, or refutes with the
// shortest part of the history that shows it:
//   unique    no address was held by two live attachments at once
//   held      every acknowledged ADD kept its address in etcd until its DEL (or its pod's deletion) began
//   released  every acknowledged DEL released what its container held when the DEL began
//   fenced    every release a controller made, it made while the leader key was its own, of the term it wrote in
//   cause     every claim etcd ended had a cause: its container's DEL or failed ADD, or its pod's deletion (gc, takeover)
//   budget    every call ended within its budget (+ process slack), failing only with a code that says why
//   index     claim keys and owner index agree at every revision
//   reserved  no reserved address was ever claimed
// etcd's revisions carry no time; the clock ticks (one put every 100 ms, its send time and acknowledgment
// known) bound each revision's commit between two instants, and a violation is reported only when those
// bounds prove it: "released before its DEL began" means released before the last instant the DEL could
// have begun, whatever the order within the bounds. Pure: no I/O.
import { ANSWER_SLACK_MS } from "../../src/agent/protocol.ts";
import { ipToHex, parseIP } from "../../src/ip/address.ts";
import { decodeRecord } from "../../src/store/record.ts";
import type { Allocation } from "../../src/store/store.ts";
import type { Call, EtcdEvent, FaultEvent, History, PodEvent } from "./history.ts";

export const PROPERTIES = ["unique", "held", "released", "fenced", "cause", "budget", "index", "reserved"] as const;
export type Property = (typeof PROPERTIES)[number];

/**
 * How far past its budget a call may end: the second the plugin waits, by design, for an agent that accepted
 * the request (docs/agent.md), and half a second for the process's start before the budget's clock and its exit.
 */
export const SLACK_MS = ANSWER_SLACK_MS + 500;
/** The codes a call may fail with under faults: try again later, the pool full, a fixed address a live pod holds. */
export const ALLOWED_CODES: Readonly<Record<Call["verb"], readonly number[]>> = { ADD: [11, 100, 101], DEL: [11] };

export interface Witness {
  readonly calls: readonly Call[];
  readonly pods: readonly PodEvent[];
  readonly etcd: readonly EtcdEvent[];
  readonly faults: readonly FaultEvent[];
}

export interface Violation {
  readonly property: Property;
  readonly message: string;
  readonly witness: Witness;
}

export interface CheckStats {
  readonly calls: number;
  readonly acknowledgedAdds: number;
  readonly acknowledgedDels: number;
  readonly failedCalls: Readonly<Record<string, number>>;
  readonly longestCallMs: number;
  readonly claims: number;
  readonly controllerReleases: number;
  readonly leaderTerms: number;
  /** Claims etcd committed after their ADD had already answered (a request that arrived late): leaks for gc. */
  readonly lateClaims: number;
  readonly revisions: number;
}

export interface CheckResult {
  readonly violations: readonly Violation[];
  readonly stats: CheckStats;
}

/** A claim's life in etcd: from the revision that gave the address to this owner to the one that ended it. */
export interface Tenure {
  readonly key: string;
  readonly ip: string;
  readonly record: Allocation;
  readonly from: number;
  to?: number;
  end?: "delete" | "replace" | "park";
}

/** Bounds on when a revision was committed, from the clock ticks around it. */
export class RevisionClock {
  readonly #revs: number[];
  readonly #loPrefix: number[];
  readonly #hiSuffix: number[];

  constructor(ticks: History["clock"]) {
    const sorted = [...ticks].sort((a, b) => a.revision - b.revision);
    this.#revs = sorted.map((t) => t.revision);
    this.#loPrefix = [];
    let lo = -Infinity;
    for (const t of sorted) this.#loPrefix.push((lo = Math.max(lo, t.sent)));
    this.#hiSuffix = new Array(sorted.length);
    let hi = Infinity;
    for (let i = sorted.length - 1; i >= 0; i--) this.#hiSuffix[i] = hi = Math.min(hi, sorted[i]!.end);
  }

  /** Index of the first tick at or after `rev`. */
  #firstAtOrAfter(rev: number): number {
    let lo = 0;
    let hi = this.#revs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#revs[mid]! < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The commit of `rev` happened after this instant (a tick sent then got an earlier or the same revision). */
  lo(rev: number): number {
    let i = this.#firstAtOrAfter(rev);
    if (i < this.#revs.length && this.#revs[i] === rev) i++;
    return i === 0 ? -Infinity : this.#loPrefix[i - 1]!;
  }

  /** The commit of `rev` happened before this instant (a tick acknowledged then got a later or the same revision). */
  hi(rev: number): number {
    const i = this.#firstAtOrAfter(rev);
    return i < this.#revs.length ? this.#hiSuffix[i]! : Infinity;
  }
}

interface Keys {
  readonly ip: RegExp;
  readonly owner: RegExp;
  readonly leader: string;
  readonly ipKey: (family: string, hex: string) => string;
  readonly ownerKey: (a: Allocation, family: string, hex: string) => string;
}

function keysOf(prefix: string, network: string): Keys {
  const root = `${prefix}/networks/${network}`;
  const esc = root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return {
    ip: new RegExp(`^${esc}/ips/(4|6)/([0-9a-f]+)$`),
    owner: new RegExp(`^${esc}/owners/([^/]+)/([^/]*)/(4|6)-([0-9a-f]+)$`),
    leader: `${prefix}/controller/leader`,
    ipKey: (f, hex) => `${root}/ips/${f}/${hex}`,
    ownerKey: (a, f, hex) => `${root}/owners/${a.containerID}/${a.ifName}/${f}-${hex}`,
  };
}

/** The address as its claim key names it (docs/etcd.md). */
export const hexOf = (ip: string): string => ipToHex(parseIP(ip));

const podOf = (a: Allocation) => `${a.podNamespace ?? ""}/${a.podName ?? ""}`;
const sameOwner = (a: Allocation, b: Allocation) => a.containerID === b.containerID && a.ifName === b.ifName;

interface Replay {
  readonly tenures: Tenure[];
  /** The leader key after each change: its value and creation revision (its term), or undefined when gone. */
  readonly leader: [number, { value: string; term: number } | undefined][];
  readonly index: Violation[];
  readonly revisions: number;
}

/** Replays etcd's history revision by revision: the claims' tenures, the leader key, and the index's agreement. */
function replay(h: History, keys: Keys): Replay {
  const state = new Map<string, string>();
  const open = new Map<string, Tenure>();
  const tenures: Tenure[] = [];
  const leader: Replay["leader"] = [];
  const index: Violation[] = [];
  const byRevision = new Map<number, EtcdEvent[]>();
  for (const e of h.etcd) {
    const list = byRevision.get(e.revision);
    if (list) list.push(e);
    else byRevision.set(e.revision, [e]);
  }
  const revisions = [...byRevision.keys()].sort((a, b) => a - b);
  for (const rev of revisions) {
    const events = byRevision.get(rev)!;
    for (const e of events) {
      const prev = state.get(e.key);
      if (e.type === "PUT") state.set(e.key, e.value ?? "");
      else state.delete(e.key);
      if (e.key === keys.leader) leader.push([rev, e.type === "PUT" ? { value: e.value ?? "", term: e.createRevision ?? rev } : undefined]);
      if (!keys.ip.test(e.key)) continue;
      const current = open.get(e.key);
      const close = (end: Tenure["end"]) => {
        if (!current) return;
        current.to = rev;
        current.end = end;
        open.delete(e.key);
      };
      if (e.type === "DELETE") {
        close("delete");
        continue;
      }
      const rec = decodeRecord(e.value ?? "");
      if (!rec) {
        index.push({ property: "index", message: `revision ${rev}: ${e.key} holds no allocation record (was ${prev ?? "absent"})`, witness: only([e]) });
        continue;
      }
      if (rec.parkedAt) {
        close("park");
        continue;
      }
      if (current && sameOwner(current.record, rec)) continue;
      close("replace");
      const t: Tenure = { key: e.key, ip: rec.ip, record: rec, from: rev };
      open.set(e.key, t);
      tenures.push(t);
    }
    // The index agrees with the claims after every transaction, never only eventually.
    for (const e of events) {
      const ip = keys.ip.exec(e.key);
      const owner = keys.owner.exec(e.key);
      if (ip) {
        const [, family, hex] = ip as unknown as [string, string, string];
        const text = state.get(e.key);
        const rec = text === undefined ? decodeRecord(e.value ?? "") : decodeRecord(text);
        if (!rec) continue;
        const ownerKey = keys.ownerKey(rec, family, hex);
        if (text !== undefined && !rec.parkedAt && state.get(ownerKey) !== text) {
          index.push({ property: "index", message: `revision ${rev}: ${e.key} is claimed by container ${rec.containerID} but its owner entry ${ownerKey} ${state.has(ownerKey) ? "holds another record" : "is missing"}`, witness: only(events) });
        }
        if (text === undefined && state.get(ownerKey) === e.value) {
          index.push({ property: "index", message: `revision ${rev}: ${e.key} was released but the owner entry ${ownerKey} still names it`, witness: only(events) });
        }
      } else if (owner) {
        const [, , , family, hex] = owner as unknown as [string, string, string, string, string];
        const claim = keys.ipKey(family, hex);
        if (e.type === "PUT" && state.get(claim) !== e.value) {
          index.push({ property: "index", message: `revision ${rev}: owner entry ${e.key} names ${claim}, which ${state.has(claim) ? "holds another record" : "is not claimed"}`, witness: only(events) });
        }
        if (e.type === "DELETE" && e.value !== undefined && state.get(claim) === e.value) {
          index.push({ property: "index", message: `revision ${rev}: owner entry ${e.key} was deleted but ${claim} still holds its claim`, witness: only(events) });
        }
      }
    }
  }
  return { tenures, leader, index, revisions: revisions.length };
}

function only(etcd: EtcdEvent[]): Witness {
  return { calls: [], pods: [], etcd, faults: [] };
}

interface Attachment {
  readonly containerID: string;
  readonly ifName: string;
  readonly ip: string;
  readonly pod: string;
  readonly add: Call;
  /** When it stopped being live: its DEL began or its pod's deletion began (Infinity: never). */
  readonly liveEnd: number;
  readonly endedBy?: Call | PodEvent;
}

export function check(h: History): CheckResult {
  const keys = keysOf(h.config.prefix, h.config.network);
  const clock = new RevisionClock(h.clock);
  const { tenures, leader, index, revisions } = replay(h, keys);
  const violations: Violation[] = [...index];
  const byContainer = groupBy(h.calls, (c) => c.containerID);
  const deletions = new Map<string, PodEvent>(); // by uid: when its deletion began
  for (const p of h.pods) if (p.kind === "deleted" && !deletions.has(p.uid)) deletions.set(p.uid, p);
  const tenuresOf = groupBy(tenures, (t) => t.record.containerID);
  const tenuresAt = groupBy(tenures, (t) => t.ip);

  const witness = (o: { containers?: string[]; uids?: string[]; ips?: string[]; from: number; to: number }): Witness => {
    const cs = new Set(o.containers ?? []);
    const us = new Set(o.uids ?? []);
    const hexes = (o.ips ?? []).map(hexOf);
    const touches = (e: EtcdEvent) => hexes.some((x) => e.key.endsWith(`/${x}`) || e.key.endsWith(`-${x}`)) ||
      [...cs].some((c) => e.key.includes(`/owners/${c}/`));
    const lo = Math.min(o.from, o.to);
    const hi = Math.max(o.from, o.to);
    return {
      calls: h.calls.filter((c) => cs.has(c.containerID)),
      pods: h.pods.filter((p) => us.has(p.uid)),
      etcd: h.etcd.filter((e) => touches(e) && clock.hi(e.revision) >= lo - 1000 && clock.lo(e.revision) <= hi + 1000),
      faults: h.faults.filter((f) => f.end >= lo - 2000 && f.start <= hi + 2000),
    };
  };
  const at = (t: number) => `+${((t - h.config.startedAt) / 1000).toFixed(3)}s`;

  // budget: every call ended in time, and failed only saying why.
  for (const c of h.calls) {
    const took = c.end - c.start;
    if (took > c.budgetMs + SLACK_MS) {
      violations.push({ property: "budget", message: `${c.verb} of ${c.containerID} on ${c.host} took ${took} ms, over its ${c.budgetMs} ms budget`, witness: witness({ containers: [c.containerID], from: c.start, to: c.end }) });
    }
    if (!c.outcome.ok && (c.outcome.code === undefined || !ALLOWED_CODES[c.verb].includes(c.outcome.code))) {
      violations.push({ property: "budget", message: `${c.verb} of ${c.containerID} on ${c.host} failed with ${c.outcome.code === undefined ? "no CNI error" : `code ${c.outcome.code}`}: ${c.outcome.msg}`, witness: witness({ containers: [c.containerID], from: c.start, to: c.end }) });
    }
    if (c.verb === "ADD" && c.outcome.ok && !c.outcome.ip) {
      violations.push({ property: "budget", message: `ADD of ${c.containerID} succeeded without an address`, witness: witness({ containers: [c.containerID], from: c.start, to: c.end }) });
    }
  }

  // The attachments the runtime was told of, and until when they were live.
  const attachments: Attachment[] = [];
  for (const [containerID, calls] of byContainer) {
    const firstDel = calls.filter((c) => c.verb === "DEL").sort((a, b) => a.start - b.start)[0];
    const deletion = deletions.get(calls[0]!.podUID);
    const ends: (Call | PodEvent)[] = [firstDel, deletion].filter((x): x is Call | PodEvent => x !== undefined);
    const endedBy = ends.sort((a, b) => a.start - b.start)[0];
    const seen = new Set<string>();
    for (const c of calls.filter((x) => x.verb === "ADD" && x.outcome.ok).sort((a, b) => a.end - b.end)) {
      const ip = (c.outcome as { ip?: string }).ip;
      if (!ip || seen.has(ip)) continue;
      seen.add(ip);
      attachments.push({ containerID, ifName: c.ifName, ip, pod: c.pod, add: c, liveEnd: endedBy?.start ?? Infinity, endedBy });
    }
  }

  // unique: of two attachments of one address, the later was acknowledged only after the earlier stopped being live.
  for (const [ip, list] of groupBy(attachments, (a) => a.ip)) {
    const sorted = [...list].sort((a, b) => a.add.end - b.add.end);
    for (let j = 1; j < sorted.length; j++) {
      for (let i = 0; i < j; i++) {
        const [a, b] = [sorted[i]!, sorted[j]!];
        if (a.containerID === b.containerID || b.add.end >= a.liveEnd) continue;
        violations.push({
          property: "unique",
          message: `${ip} was held by two live attachments at once: ${a.pod} (container ${a.containerID}, acknowledged ${at(a.add.end)}, live until ${a.liveEnd === Infinity ? "the end" : at(a.liveEnd)}) and ${b.pod} (container ${b.containerID}, acknowledged ${at(b.add.end)})`,
          witness: witness({ containers: [a.containerID, b.containerID], uids: [a.add.podUID, b.add.podUID], ips: [ip], from: a.add.start, to: b.add.end }),
        });
      }
    }
  }

  // held: the claim behind each acknowledgment lasted at least until the attachment stopped being live.
  for (const a of attachments) {
    const mine = (tenuresOf.get(a.containerID) ?? []).filter((t) => t.ip === a.ip && t.record.ifName === a.ifName);
    const claim = mine.filter((t) => clock.lo(t.from) <= a.add.end).at(-1);
    const w = () => witness({ containers: [a.containerID], uids: [a.add.podUID], ips: [a.ip], from: a.add.start, to: claim?.to !== undefined ? clock.hi(claim.to) : a.add.end });
    if (!claim) {
      violations.push({ property: "held", message: `ADD of ${a.containerID} (${a.pod}) was acknowledged with ${a.ip} at ${at(a.add.end)}, but etcd holds no claim of it committed by then`, witness: w() });
      continue;
    }
    if (claim.to === undefined || clock.hi(claim.to) >= a.liveEnd) continue;
    violations.push({
      property: "held",
      message: `${a.ip} of ${a.pod} (container ${a.containerID}, acknowledged ${at(a.add.end)}) was ${claim.end === "replace" ? "taken over" : "released"} at revision ${claim.to}, committed by ${at(clock.hi(claim.to))}, ` +
        `before ${a.endedBy ? `its ${"verb" in a.endedBy ? "DEL" : "pod's deletion"} began at ${at(a.liveEnd)}` : "any DEL or deletion of its pod"}`,
      witness: w(),
    });
  }

  // released: an acknowledged DEL leaves nothing its container held when the DEL began.
  let acknowledgedDels = 0;
  for (const d of h.calls) {
    if (d.verb !== "DEL" || !d.outcome.ok) continue;
    acknowledgedDels++;
    for (const t of tenuresOf.get(d.containerID) ?? []) {
      if (t.record.ifName !== d.ifName || !(clock.hi(t.from) < d.start)) continue;
      if (t.to !== undefined && clock.lo(t.to) <= d.end) continue;
      violations.push({
        property: "released",
        message: `DEL of ${d.containerID} (${d.pod}) on ${d.host} was acknowledged at ${at(d.end)}, but ${t.ip}, claimed at revision ${t.from} before it began, ${t.to === undefined ? "is still held" : `was released only at revision ${t.to}, after ${at(clock.lo(t.to))}`}`,
        witness: witness({ containers: [d.containerID], uids: [d.podUID], ips: [t.ip], from: d.start, to: d.end }),
      });
    }
  }

  // cause: every claim that ended was ended by its container's own call or after its pod's deletion began.
  for (const t of tenures) {
    if (t.to === undefined) continue;
    const by = clock.hi(t.to);
    // Its container's DEL, or a failed ADD of it undoing its own claim (an acknowledged one never does), running
    // then: begun before the release, and not over (an answered call by its answer; one that failed may have
    // gone on in the agent until its budget ran out).
    const after = clock.lo(t.to);
    const own = (byContainer.get(t.record.containerID) ?? []).some((c) => c.start < by && (c.verb === "DEL" || !c.outcome.ok) &&
      after <= (c.outcome.ok ? c.end : c.start + c.budgetMs + SLACK_MS));
    const deletion = t.record.podUID ? deletions.get(t.record.podUID) : undefined;
    if (own || (deletion && deletion.start < by)) continue;
    violations.push({
      property: "cause",
      message: `${t.ip} of ${podOf(t.record)} (container ${t.record.containerID}) was ${t.end === "replace" ? "taken over" : t.end === "park" ? "parked" : "released"} at revision ${t.to} (by ${at(by)}) with no cause: no call of its container and no deletion of its pod had begun`,
      witness: witness({ containers: [t.record.containerID], uids: t.record.podUID ? [t.record.podUID] : [], ips: [t.ip], from: clock.lo(t.from), to: by }),
    });
  }

  // fenced: a controller's release was committed while the leader key named it (its lease alive, its term current).
  const leaderBefore = (rev: number) => {
    let held: { value: string; term: number } | undefined;
    for (const [r, v] of leader) {
      if (r >= rev) break;
      held = v;
    }
    return held;
  };
  const describeLeader = (l: ReturnType<typeof leaderBefore>) => (l ? `${l.value} (term ${l.term})` : "no one (its lease had expired)");
  for (const r of h.releases) {
    const candidates = (tenuresAt.get(r.ip) ?? []).filter((t) => podOf(t.record) === r.pod && t.to !== undefined &&
      (r.action === "parked" ? t.end === "park" : t.end === "delete"));
    const fenced = candidates.find((t) => {
      const l = leaderBefore(t.to!);
      return l?.value === r.by && (r.term === undefined || l.term === r.term);
    });
    if (fenced) continue;
    const t = candidates.at(-1);
    violations.push({
      property: "fenced",
      message: t
        ? `${r.by} logged releasing ${r.ip} of ${r.pod}${r.term !== undefined ? ` in term ${r.term}` : ""}, committed at revision ${t.to}, when the leader key named ${describeLeader(leaderBefore(t.to!))}`
        : `${r.by} logged releasing ${r.ip} of ${r.pod}, but etcd's history has no such release`,
      witness: { ...witness({ ips: [r.ip], from: t ? clock.lo(t.from) : h.config.startedAt, to: t ? clock.hi(t.to!) : h.config.startedAt }), etcd: h.etcd.filter((e) => e.key === keys.leader || e.key.endsWith(`/${hexOf(r.ip)}`)) },
    });
  }

  // reserved: a reservation's addresses are never claimed.
  const reserved = new Set(h.config.reserved);
  for (const t of tenures) {
    if (!reserved.has(t.ip)) continue;
    violations.push({ property: "reserved", message: `${t.ip} is reserved, but ${podOf(t.record)} claimed it at revision ${t.from}`, witness: witness({ containers: [t.record.containerID], ips: [t.ip], from: clock.lo(t.from), to: clock.hi(t.from) }) });
  }

  const failedCalls: Record<string, number> = {};
  for (const c of h.calls) {
    if (c.outcome.ok) continue;
    const k = `${c.verb} ${c.outcome.code ?? "none"}`;
    failedCalls[k] = (failedCalls[k] ?? 0) + 1;
  }
  const lateClaims = tenures.filter((t) => {
    const adds = (byContainer.get(t.record.containerID) ?? []).filter((c) => c.verb === "ADD");
    return adds.length > 0 && clock.lo(t.from) > Math.max(...adds.map((c) => c.end));
  }).length;
  return {
    violations,
    stats: {
      calls: h.calls.length,
      acknowledgedAdds: h.calls.filter((c) => c.verb === "ADD" && c.outcome.ok).length,
      acknowledgedDels,
      failedCalls,
      longestCallMs: Math.max(0, ...h.calls.map((c) => c.end - c.start)),
      claims: tenures.length,
      controllerReleases: h.releases.length,
      leaderTerms: leader.filter(([, v]) => v !== undefined).length,
      lateClaims,
      revisions,
    },
  };
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}
