// The workload: pods made and deleted through the real API (as an admin: the scheduler's and the kubelet's
// part, never faulted), and the plugin run on their hosts the way a runtime runs it (ip netns exec, CNI_*
// environment, the config on stdin). A pod's life: ADD, the runtime's retries of a failed ADD with the same
// container ID, a while alive, DEL until it succeeds, then the pod object deleted; some pods lose their DEL
// (their node "died") and only garbage collection frees their address; some pairs of pods on two hosts are
// given the same fixed address and ADDed at once. Operators run `kube-ipam gc` now and then.
import type { Bed } from "./bed.ts";
import { BUDGET_SECONDS, FIXED, POD_NAMESPACE } from "./bed.ts";
import type { Call, Outcome, PodEvent } from "./history.ts";
import { inNetns } from "./netns.ts";
import type { Prng } from "./prng.ts";
import { BINARY, cniEnv } from "../support/plugin.ts";
import { makePod } from "../support/kube_apiserver.ts";
import { type BedNode, HOSTS } from "./topology.ts";

/** A process that outlives its budget by this much is killed (and the call recorded as over budget). */
const KILL_AFTER_MS = 15_000;

export interface Recorder {
  call(c: Omit<Call, "id">): Call;
  pod(p: PodEvent): void;
  gcRun(ok: boolean): void;
}

interface Pod {
  readonly ref: string;
  readonly name: string;
  readonly uid: string;
  readonly host: BedNode;
  readonly fixed?: string;
}

export class Workload {
  #pods = 0;
  readonly #bed: Bed;
  readonly #rec: Recorder;
  #deadline: number;

  constructor(bed: Bed, rec: Recorder, deadline: number) {
    this.#bed = bed;
    this.#rec = rec;
    this.#deadline = deadline;
  }

  /** Every worker ends after the life it is in (a worker failed: the run ends). */
  stop(): void {
    this.#deadline = 0;
  }

  async #createPod(host: BedNode, fixed: string | undefined): Promise<Pod> {
    const name = `p${++this.#pods}`;
    const start = Date.now();
    const made = await this.#bed.api.setPod(makePod({
      namespace: POD_NAMESPACE, name, nodeName: host.name, ...(fixed ? { annotations: { "kube-ipam.ip": fixed } } : {}),
    }));
    const uid = made.metadata.uid!;
    this.#rec.pod({ kind: "created", pod: `${POD_NAMESPACE}/${name}`, uid, start, end: Date.now() });
    return { ref: `${POD_NAMESPACE}/${name}`, name, uid, host, ...(fixed ? { fixed } : {}) };
  }

  async #deletePod(pod: Pod): Promise<void> {
    const start = Date.now();
    await this.#bed.api.deletePod(POD_NAMESPACE, pod.name);
    this.#rec.pod({ kind: "deleted", pod: pod.ref, uid: pod.uid, start, end: Date.now() });
  }

  /** One CNI call on the pod's host, as the runtime makes it. */
  async cni(verb: "ADD" | "DEL", pod: Pod, containerID: string, attempt: number): Promise<Call> {
    const env = cniEnv({
      command: verb, containerID, netns: `/var/run/netns/${pod.host.netns}`, ifName: "eth0",
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${POD_NAMESPACE};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${containerID};K8S_POD_UID=${pod.uid}`,
    });
    const start = Date.now();
    const proc = Bun.spawn(inNetns(pod.host.netns, [BINARY]), {
      env, stdin: new TextEncoder().encode(this.#bed.conf(pod.host.name)), stdout: "pipe", stderr: "pipe",
    });
    const killer = setTimeout(() => proc.kill("SIGKILL"), BUDGET_SECONDS * 1000 + KILL_AFTER_MS);
    const [stdout, , exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(killer);
    return this.#rec.call({
      verb, host: pod.host.name, containerID, ifName: "eth0", pod: pod.ref, podUID: pod.uid, attempt, start, end: Date.now(),
      budgetMs: BUDGET_SECONDS * 1000, outcome: outcomeOf(verb, exitCode, proc.signalCode, stdout),
      ...(pod.fixed ? { fixed: pod.fixed } : {}),
    });
  }

  /** ADD, and the runtime's retries with the same container ID; true when an attempt succeeded. */
  async #add(pod: Pod, containerID: string, r: Prng): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.cni("ADD", pod, containerID, attempt);
      if (c.outcome.ok) return true;
      if (attempt >= 3 || !r.chance(0.6)) return false;
      await Bun.sleep(r.int(200, 800)); // the runtime's back-off
    }
  }

  /** DEL until it succeeds (a runtime retries a failed DEL for as long as the sandbox exists), then the pod object. */
  async #teardown(pod: Pod, containerID: string, r: Prng): Promise<void> {
    if (r.chance(0.12)) return this.#deletePod(pod); // the node died: its DEL never comes
    for (let attempt = 1; attempt <= 6; attempt++) {
      if ((await this.cni("DEL", pod, containerID, attempt)).outcome.ok) break;
      await Bun.sleep(r.int(100, 600));
    }
    await this.#deletePod(pod);
  }

  async #life(pod: Pod, r: Prng): Promise<void> {
    const containerID = randomHex(r, 16);
    if (await this.#add(pod, containerID, r)) await Bun.sleep(r.int(100, 2500));
    await this.#teardown(pod, containerID, r);
  }

  /** A worker: one pod's life after another until the deadline. */
  async worker(r: Prng): Promise<void> {
    while (Date.now() < this.#deadline) {
      if (r.chance(0.15)) {
        // Two pods on two hosts with the same fixed address, started at once: one gets it, the other waits.
        const fixed = r.pick(FIXED);
        const [a, b] = r.sample(HOSTS, 2) as [BedNode, BedNode];
        const pods = await Promise.all([this.#createPod(a, fixed), this.#createPod(b, fixed)]);
        const [ra, rb] = [r.fork(`${pods[0].name}`), r.fork(`${pods[1].name}`)];
        await Promise.all([this.#life(pods[0], ra), this.#life(pods[1], rb)]);
        continue;
      }
      const pod = await this.#createPod(r.pick(HOSTS), r.chance(0.1) ? r.pick(FIXED) : undefined);
      await this.#life(pod, r);
    }
  }

  /** An operator's `kube-ipam gc` from a host, every few seconds, with the controller's identity. */
  async operator(r: Prng): Promise<void> {
    while (Date.now() < this.#deadline) {
      await Bun.sleep(r.int(5000, 9000));
      const host = r.pick(HOSTS);
      const proc = Bun.spawn(inNetns(host.netns, [BINARY, "gc", "--conf", this.#bed.confPath(host.name), "--kubeconfig",
        this.#bed.controllerKubeconfig, "--grace", "4s", "--max-release", "100%", "-o", "json"]), { stdout: "pipe", stderr: "pipe" });
      const killer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
      const [, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(killer);
      this.#rec.gcRun(code === 0);
    }
  }
}

function outcomeOf(verb: string, exitCode: number, signal: unknown, stdout: string): Outcome {
  if (signal) return { ok: false, msg: `killed by ${signal}: no answer after ${BUDGET_SECONDS * 1000 + KILL_AFTER_MS} ms` };
  let json: { code?: unknown; msg?: unknown; ips?: { address?: string }[] } | undefined;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    return { ok: false, msg: `not JSON on stdout (exit ${exitCode}): ${stdout.slice(0, 200)}` };
  }
  if (exitCode === 0) {
    if (verb === "DEL") return { ok: true };
    const ip = json?.ips?.[0]?.address?.split("/")[0];
    return ip ? { ok: true, ip } : { ok: false, msg: `exit 0 without an address: ${stdout.slice(0, 200)}` };
  }
  const code = typeof json?.code === "number" ? json.code : undefined;
  return { ok: false, ...(code !== undefined ? { code } : {}), msg: typeof json?.msg === "string" ? json.msg : `exit ${exitCode}: ${stdout.slice(0, 200)}` };
}

function randomHex(r: Prng, n: number): string {
  let s = "";
  while (s.length < n) s += r.int(0, 15).toString(16);
  return s;
}
