// One chaos run: the bed up, the clock, the controllers, the workload and the seeded faults for the run's
// length; then every fault healed, the controllers stopped (their logs complete), etcd's history read and
// the checker run over all of it. The history is written to the bed's directory, which is kept when the
// run found a violation (or `keep` asks for it).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBed, NETWORK, PREFIX, RESERVED, type Bed } from "./bed.ts";
import { check, type CheckResult } from "./checker.ts";
import { runClock } from "./clock.ts";
import { readEtcdHistory } from "./etcd_history.ts";
import { healAll, runFaults } from "./faults.ts";
import type { Call, ClockTick, FaultEvent, History, LoggedRelease, PodEvent } from "./history.ts";
import { createNetwork, destroyNetwork, inNetns, run } from "./netns.ts";
import { Prng } from "./prng.ts";
import { formatSummary, formatViolation } from "./report.ts";
import { planFaults } from "./schedule.ts";
import { BINARY } from "../support/plugin.ts";
import { clientUrl, HOSTS, MEMBERS } from "./topology.ts";
import { Workload } from "./workload.ts";

export interface ChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** Pods' lives at once (each a worker). */
  readonly workers?: number;
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

export interface ChaosRun {
  readonly history: History;
  readonly result: CheckResult;
  readonly summary: string;
  /** Each violation with its seed and witness, ready to print. */
  readonly reports: readonly string[];
  readonly gcRuns: { ok: number; failed: number };
  /** The bed's directory, kept when there were violations or `keep` was set. */
  readonly dir?: string;
}

export const rerunCommand = (seed: number, durationMs: number) =>
  `npm run chaos -- --seed ${seed} --minutes ${+(durationMs / 60_000).toFixed(2)}`;

/** The controllers' "gc released"/"gc parked" lines, with the identity (POD_NAME/pid) each wrote in the leader key. */
export function loggedReleases(name: string, text: string): LoggedRelease[] {
  const out: LoggedRelease[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"gc released"') && !line.includes('"gc parked"')) continue;
    try {
      const j = JSON.parse(line) as { msg: string; pid: number; ip: string; pod: string; term?: string };
      out.push({ by: `${name}/${j.pid}`, ip: j.ip, pod: j.pod, action: j.msg === "gc parked" ? "parked" : "released",
        ...(j.term ? { term: Number(j.term) } : {}) });
    } catch {}
  }
  return out;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosRun> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join("/tmp", `kube-ipam-chaos-${opts.seed}-`));
  const calls: Call[] = [];
  const pods: PodEvent[] = [];
  const faults: FaultEvent[] = [];
  const clock: ClockTick[] = [];
  const gcRuns = { ok: 0, failed: 0 };
  let bed: Bed | undefined;
  let failed = true;
  try {
    createNetwork();
    bed = await startBed(dir);
    // A reservation, as an operator makes one for an address a host outside the cluster uses.
    run(inNetns(HOSTS[0]!.netns, [BINARY, "reserve", "outside-host", RESERVED, "--conf", bed.confPath(HOSTS[0]!.name)]));
    const startedAt = Date.now();
    const deadline = startedAt + opts.durationMs;
    const plan = planFaults(opts.seed, opts.durationMs);
    log(`seed ${opts.seed}: ${plan.length} faults planned over ${opts.durationMs / 1000} s; bed in ${dir}`);

    const stopClock = new AbortController();
    const clockDone = runClock(clock, stopClock.signal);
    const stopFaults = new AbortController();
    const faultsDone = runFaults(bed, plan, startedAt, (f) => {
      faults.push(f);
      log(`  fault #${f.id} ${f.kind}: ${f.what} (${((f.end - f.start) / 1000).toFixed(1)} s)`);
    }, stopFaults.signal);
    const workload = new Workload(bed, {
      call: (c) => {
        const call = { ...c, id: calls.length + 1 };
        calls.push(call);
        return call;
      },
      pod: (p) => pods.push(p),
      gcRun: (ok) => (ok ? gcRuns.ok++ : gcRuns.failed++),
    }, deadline);
    const root = new Prng(opts.seed);
    const workers = Array.from({ length: opts.workers ?? 6 }, (_, i) => workload.worker(root.fork(`worker-${i}`)));
    const operator = workload.operator(root.fork("operator"));
    // A worker that fails (an API error) ends the run, but only once every other process it started is done.
    const settled = await Promise.allSettled([...workers.map((w) => w.catch((e) => (workload.stop(), Promise.reject(e)))), operator]);
    stopFaults.abort();
    const faulted = await faultsDone.then(() => undefined, (e: unknown) => e);
    healAll(bed);
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
    if (faulted) throw faulted;

    // The controllers' logs are complete once they have stopped; the clock's last tick comes after every write.
    for (const c of bed.controllers.values()) c.proc.kill("SIGTERM");
    await Promise.all([...bed.controllers.values()].map(async (c) => {
      const killer = setTimeout(() => c.proc.kill("SIGKILL"), 15_000);
      if ((await c.proc.exited) !== 0) throw new Error(`controller ${c.name} did not stop cleanly on SIGTERM (${c.proc.signalCode ?? c.proc.exitCode}): see ${c.log}`);
      clearTimeout(killer);
    }));
    await Bun.sleep(300);
    stopClock.abort();
    await clockDone;
    const releases = [...bed.controllers.values()].flatMap((c) => loggedReleases(c.name, readFileSync(c.log, "utf8")));
    const etcd = await readEtcdHistory(clientUrl(MEMBERS[0]!), 60_000 + opts.durationMs / 10);
    const history: History = {
      config: { seed: opts.seed, durationMs: opts.durationMs, prefix: PREFIX, network: NETWORK, reserved: [RESERVED], startedAt },
      calls, pods, faults: faults.sort((a, b) => a.start - b.start), clock, releases, etcd,
    };
    writeFileSync(join(dir, "history.json"), JSON.stringify(history));
    const result = check(history);
    const rerun = rerunCommand(opts.seed, opts.durationMs);
    failed = result.violations.length > 0;
    return {
      history, result, summary: formatSummary(history, result), gcRuns,
      reports: result.violations.map((v) => formatViolation(history, v, rerun)),
      ...(failed || opts.keep ? { dir } : {}),
    };
  } finally {
    await bed?.stop();
    destroyNetwork();
    if (!failed && !opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}
