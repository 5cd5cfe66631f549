// Applies the planned faults to the bed at their times and heals each when its time is up: nftables
// partitions and degraded links (netns.ts), SIGSTOP and SIGCONT. Targets that depend on the moment (the
// leader of etcd, the leading controller) are resolved as the fault begins and named in its record.
import type { Bed } from "./bed.ts";
import type { FaultEvent } from "./history.ts";
import { applyCut, applyLink, clearCut, clearLink } from "./netns.ts";
import { LINK_KINDS, type PlannedFault } from "./schedule.ts";
import { API_IP, type BedNode, CONTROLLERS, HOSTS, MEMBERS, NODES } from "./topology.ts";

interface Applied {
  readonly what: string;
  heal(): void;
}

const ips = (nodes: readonly BedNode[]) => nodes.map((n) => n.ip);
const names = (nodes: readonly BedNode[]) => nodes.map((n) => n.name).join(" ");
const nth = <T>(items: readonly T[], i: number) => items[i % items.length]!;

/** Cuts every node of `side` from every node outside it, both ways (rules on the side's nodes only). */
function partition(side: readonly BedNode[]): () => void {
  const others = ips(NODES.filter((n) => !side.includes(n)));
  for (const n of side) applyCut(n, { dropFrom: others, dropTo: others });
  return () => side.forEach(clearCut);
}

async function apply(bed: Bed, f: PlannedFault): Promise<Applied> {
  const member = async () => (f.atLeader ? await bed.etcdLeader() : undefined) ?? nth(MEMBERS, f.pick);
  const leaderTag = async (m: BedNode) => ((await bed.etcdLeader()) === m ? " (leader)" : "");
  const pause = (name: string, pid: number): Applied => {
    process.kill(pid, "SIGSTOP");
    return { what: `${name} stopped (SIGSTOP)`, heal: () => {
      try {
        process.kill(pid, "SIGCONT");
      } catch {} // it died meanwhile: the run's end says so (a controller that does not stop cleanly fails it)
    } };
  };
  switch (f.kind) {
    case "isolate-member": {
      const m = await member();
      const tag = await leaderTag(m);
      return { what: `${m.name}${tag} cut from every other node`, heal: partition([m]) };
    }
    case "leader-minority": {
      const leader = (await bed.etcdLeader()) ?? nth(MEMBERS, f.pick);
      const side = [leader, ...sampleBy(HOSTS, f.pick, 2), nth(CONTROLLERS, f.pick >> 3)];
      return { what: `${names(side)} (etcd's leader's side) cut from the rest`, heal: partition(side) };
    }
    case "host-minority": {
      const h = nth(HOSTS, f.pick);
      const keep = nth(MEMBERS, f.pick >> 2);
      const away = MEMBERS.filter((m) => m !== keep);
      applyCut(h, { dropFrom: ips(away), dropTo: ips(away) });
      return { what: `${h.name} reaches only ${keep.name} of etcd`, heal: () => clearCut(h) };
    }
    case "one-way": {
      const m = await member();
      const tag = await leaderTag(m);
      const peers = MEMBERS.filter((x) => x !== m);
      applyCut(m, { dropFrom: ips(peers), dropTo: [] });
      return { what: `${m.name}${tag} hears nothing from ${names(peers)} (its own messages still reach them)`, heal: () => clearCut(m) };
    }
    case "pause-member": {
      const m = await member();
      const tag = await leaderTag(m);
      const p = pause(`${m.name}${tag}`, bed.members.get(m.name)!.proc.pid);
      return p;
    }
    case "pause-controller": {
      const c = (await bed.controllerLeader()) ?? nth(CONTROLLERS, f.pick);
      return pause(`controller ${c.name}`, bed.controllers.get(c.name)!.proc.pid);
    }
    case "isolate-controller": {
      const c = (await bed.controllerLeader()) ?? nth(CONTROLLERS, f.pick);
      applyCut(c, { dropFrom: ips(MEMBERS), dropTo: ips(MEMBERS) });
      return { what: `controller ${c.name} cut from etcd (not from the API)`, heal: () => clearCut(c) };
    }
    case "pause-agent": {
      const h = nth(HOSTS, f.pick);
      return pause(`${h.name}'s agent`, bed.agents.get(h.name)!.proc.pid);
    }
    case "api-cut": {
      const n = nth([...HOSTS, ...CONTROLLERS], f.pick);
      applyCut(n, { dropFrom: [API_IP], dropTo: [API_IP] });
      return { what: `${n.name} cut from the Kubernetes API`, heal: () => clearCut(n) };
    }
    case "slow-link": {
      const n = nth(NODES, f.pick);
      applyLink(n, { lossPercent: 0, slowPercent: f.percent });
      return { what: `${n.name}'s link: ${f.percent}% of packets queued behind 256 kbit/s (delay, reordering)`, heal: () => clearLink(n) };
    }
    case "lossy-link": {
      const n = nth(NODES, f.pick);
      applyLink(n, { lossPercent: f.percent, slowPercent: 0 });
      return { what: `${n.name}'s link drops ${f.percent}% of packets each way`, heal: () => clearLink(n) };
    }
  }
}

function sampleBy<T>(items: readonly T[], pick: number, n: number): T[] {
  const rest = [...items];
  const out: T[] = [];
  for (let i = 0; i < n && rest.length > 0; i++) out.push(rest.splice((pick >> (i * 3)) % rest.length, 1)[0]!);
  return out;
}

/**
 * Runs the plan against the bed from `startedAt`, each track (cuts, links) in order: a fault is healed before
 * the next of its track begins, even when applying it ran late, so two cuts never meet on one node. Resolves
 * when every fault has been applied and healed; `signal` ends it early (the active ones healed at once, the
 * rest skipped). A fault that cannot be applied or healed fails the run.
 */
export async function runFaults(bed: Bed, plan: readonly PlannedFault[], startedAt: number, record: (f: FaultEvent) => void,
  signal: AbortSignal): Promise<void> {
  const wait = (ms: number) => new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, Math.max(0, ms));
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
  const track = async (faults: readonly PlannedFault[]) => {
    for (const f of faults) {
      await wait(startedAt + f.at - Date.now());
      if (signal.aborted) return;
      const begun = Date.now();
      const applied = await apply(bed, f);
      await wait(begun + f.durationMs - Date.now());
      applied.heal();
      record({ id: f.id, kind: f.kind, what: applied.what, start: begun, end: Date.now() });
    }
  };
  const isLink = (f: PlannedFault) => (LINK_KINDS as readonly string[]).includes(f.kind);
  await Promise.all([track(plan.filter((f) => !isLink(f))), track(plan.filter(isLink))]);
}

/** Heals whatever a fault may have left (an aborted run): every rule removed, every process continued. */
export function healAll(bed: Bed): void {
  for (const n of NODES) {
    clearCut(n);
    clearLink(n);
  }
  for (const p of [...bed.members.values(), ...bed.agents.values(), ...bed.controllers.values()]) p.proc.kill("SIGCONT");
}
