// The faults of a run, planned from its seed before it starts: when, how long, and the choices that do not
// depend on the run's state (which host, what share of packets). What does depend on it (which member
// leads etcd, which controller leads) is resolved when the fault begins, and recorded in the history.
import { Prng } from "./prng.ts";

/** Faults that cut or stop something: one at a time, in a deck that holds each kind once before any repeats. */
export const CUT_KINDS = [
  "isolate-member", // one member cut from every other node, both ways (the leader half the time)
  "leader-minority", // etcd's leader, two hosts and a controller apart from the rest
  "host-minority", // a host that reaches only one member
  "one-way", // a member that hears no other member while its own messages still go out
  "pause-member", // SIGSTOP, later SIGCONT (the leader half the time)
  "pause-controller", // the leading controller, for longer than its lease
  "isolate-controller", // the leading controller cut from etcd (not from the API) while the other takes over
  "pause-agent", // a host's node agent
  "api-cut", // a host or a controller cut from the Kubernetes API
] as const;
/** A degraded link on one node, on a track of its own, overlapping the cuts. */
export const LINK_KINDS = ["slow-link", "lossy-link"] as const;

export type CutKind = (typeof CUT_KINDS)[number];
export type LinkKind = (typeof LINK_KINDS)[number];
export type FaultKind = CutKind | LinkKind;

export interface PlannedFault {
  readonly id: number;
  readonly kind: FaultKind;
  /** ms from the start of the run. */
  readonly at: number;
  readonly durationMs: number;
  /** An index into the fault's candidates (hosts, members, nodes), taken modulo their number. */
  readonly pick: number;
  /** For member faults: aim at the member that leads when the fault begins. */
  readonly atLeader: boolean;
  /** The share of packets a link fault slows or drops. */
  readonly percent: number;
}

export interface PlanOptions {
  /** No fault before this (the bed settles, the first pods start). */
  readonly quietStartMs?: number;
  /** Every fault has ended this long before the end (the last calls run on a healed bed). */
  readonly quietEndMs?: number;
}

/** How long each kind lasts: a paused or isolated controller outlives its 3 s lease. */
function duration(kind: FaultKind, r: Prng): number {
  switch (kind) {
    case "pause-controller":
    case "isolate-controller":
      return r.int(4500, 8000);
    case "slow-link":
    case "lossy-link":
      return r.int(3000, 10_000);
    default:
      return r.int(2500, 6000);
  }
}

export function planFaults(seed: number, durationMs: number, opts: PlanOptions = {}): PlannedFault[] {
  const start = opts.quietStartMs ?? 4000;
  const end = durationMs - (opts.quietEndMs ?? 6000);
  const faults: PlannedFault[] = [];
  const track = (r: Prng, kinds: readonly FaultKind[], gap: [number, number]) => {
    let deck: FaultKind[] = [];
    for (let at = start + r.int(0, gap[0]); ;) {
      if (deck.length === 0) deck = r.sample(kinds, kinds.length);
      const kind = deck.shift()!;
      const durationMsOf = duration(kind, r);
      if (at + durationMsOf > end) return;
      faults.push({
        id: 0, kind, at, durationMs: durationMsOf,
        pick: r.int(0, 1 << 20), atLeader: r.chance(0.5), percent: kind === "lossy-link" ? r.int(10, 35) : r.int(30, 70),
      });
      at += durationMsOf + r.int(gap[0], gap[1]);
    }
  };
  const root = new Prng(seed);
  // Bounded so that 90 s hold the whole deck of cuts, whatever the seed: 7 x (6 + 1.5) + 2 x (8 + 1.5) < 80 s.
  track(root.fork("cuts"), CUT_KINDS, [800, 1500]);
  track(root.fork("links"), LINK_KINDS, [1000, 6000]);
  return faults.sort((a, b) => a.at - b.at).map((f, i) => ({ ...f, id: i + 1 }));
}
