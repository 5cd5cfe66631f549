// The node agent on the Kubernetes store, as agent.test.ts and agent_held_view.test.ts have it on etcd: a
// real `kube-agent` process serving the built forwarder's requests against a real kube-apiserver with
// kube-ipam's custom resources. Its view of each network's held addresses (held_mirror.ts: the names listed
// once, then a watch) picks the address an ADD claims first, so an ADD into a dense pool costs about what one
// into an empty pool costs, where a plugin running by itself reads the pool's blocks of names. Requests are
// counted from the API server's audit log (`api.requests`: the plugin's identity's, not the admin's). Whatever
// the view knows or misses, no address is handed out twice and "exhausted" (code 100) comes only when the
// pool is full.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Agent, startAgent } from "../support/agent.ts";
import { eventually } from "../support/eventually.ts";
import { ipOf, type KubeConf, kubeNetConf, ls, useKubeDatastore } from "../support/kube_datastore.ts";
import { type CniReply, mapLimit, runPlugin } from "../support/plugin.ts";

const env = useKubeDatastore();

async function withAgent<T>(name: string, fn: (agent: Agent) => Promise<T>): Promise<T> {
  const agent = await startAgent(join(env.dir.path, name));
  try {
    return await fn(agent);
  } finally {
    await agent.stop();
  }
}

function add(conf: unknown, id: string, node: string): Promise<CniReply> {
  return runPlugin(conf, { command: "ADD", containerID: id, env: { KUBE_IPAM_NODE_NAME: node } });
}

async function mustAdd(conf: unknown, id: string, node: string): Promise<string> {
  const r = await add(conf, id, node);
  if (r.exitCode !== 0) throw new Error(`ADD ${id} failed: ${r.stdout}${r.stderr}`);
  return ipOf(r);
}

/** Every address from `prefix.from` to `prefix.to`. */
const addresses = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}.${from + i}`);

/** The requests of the plugin's identity (which the agent's store uses) since `api.clearRequests()`, watches left out. */
const requests = () => env.api.requests.filter((r) => !/[?&]watch=(true|1)/.test(r));

/** Until the agent's view of `network` is listed and watched (its watch of the network's IPAllocations has begun). */
async function viewWatched(network: string): Promise<void> {
  const selector = encodeURIComponent(`kube-ipam.io/network=${network}`);
  await eventually(`the agent's watch of ${network}`, () => env.api.watchRequests.filter((r) => r.includes("/ipallocations?") && r.includes(selector)).length,
    (n) => n >= 1);
}

/** One network seen through the agent and directly (the plugin running the request itself). */
function network(agent: Agent, ipam: Record<string, unknown>): { viaAgent: KubeConf; direct: KubeConf } {
  const direct = kubeNetConf(env, ipam);
  return { direct, viaAgent: { ...direct, ipam: { ...direct.ipam, agentSocket: agent.socket } } };
}

describe("the node agent on the Kubernetes store", () => {
  test("serves ADD, CHECK and DEL through its socket; stopped, the plugin runs them itself", async () => {
    const dir = join(env.dir.path, "basic");
    const agent = await startAgent(dir);
    const { viaAgent, direct } = network(agent, { subnet: "10.90.0.0/24" });
    let stopped = false;
    try {
      const r = await add(viaAgent, "c1", "node-1");
      expect(r.exitCode).toBe(0);
      expect(await agent.served("ADD")).toBe(1);
      expect((await runPlugin({ ...viaAgent, prevResult: r.json }, { command: "CHECK", containerID: "c1" })).exitCode).toBe(0);
      expect((await ls(env, direct)).map((a) => [a.ip, a.containerID])).toEqual([[ipOf(r), "c1"]]);
      expect((await runPlugin(viaAgent, { command: "DEL", containerID: "c1" })).exitCode).toBe(0);
      expect([await agent.served("CHECK"), await agent.served("DEL")]).toEqual([1, 1]);
      expect(await ls(env, direct)).toEqual([]);
      await agent.stop();
      stopped = true;
      // No agent: the same config is served by the plugin itself.
      expect((await add(viaAgent, "c2", "node-1")).exitCode).toBe(0);
      expect((await ls(env, direct)).map((a) => a.containerID)).toEqual(["c2"]);
    } finally {
      if (!stopped) await agent.stop();
    }
  });

  test("a 95%-full pool: the agent's ADDs claim the free addresses at once with a handful of requests, a plugin alone reads the pool", async () => {
    await withAgent("dense", async (agent) => {
      // 100 addresses, 95 held before the agent ever hears of the network (its view starts from a list).
      const pool = addresses("10.91.0", 10, 109);
      const { viaAgent, direct } = network(agent, { subnet: "10.91.0.0/24", rangeStart: "10.91.0.10", rangeEnd: "10.91.0.109" });
      const answered = new Map<string, string>();
      const taken = await mapLimit(Array.from({ length: 95 }, (_, i) => i), 8, (i) => mustAdd(direct, `fill-${i}`, `fill-node-${i % 8}`));
      taken.forEach((ip, i) => answered.set(`fill-${i}`, ip));
      expect(new Set(taken).size).toBe(95);
      const free = pool.filter((ip) => !taken.includes(ip));

      // The agent's first request for the network lists it and opens the watch.
      answered.set("warm", await mustAdd(viaAgent, "warm", "node-0"));
      await viewWatched(direct.name);

      // Each further ADD, from nodes whose cursors start anywhere in the pool: one claim, no reads of the pool.
      const perAdd: string[][] = [];
      for (let i = 1; i <= 3; i++) {
        env.api.clearRequests();
        answered.set(`new-${i}`, await mustAdd(viaAgent, `new-${i}`, `new-node-${i}`));
        perAdd.push(requests());
      }
      for (const reqs of perAdd) {
        expect(reqs.filter((r) => r.startsWith("POST /apis/kube-ipam.io/v1alpha1/ipallocations"))).toHaveLength(1);
        expect(reqs.filter((r) => r.includes("kube-ipam.io%2Fblock"))).toEqual([]);
        expect(reqs.length).toBeLessThanOrEqual(6);
      }
      // The same ADD by a plugin alone: its first guess is held, and it reads blocks of names to find the gap.
      env.api.clearRequests();
      answered.set("alone", await mustAdd(direct, "alone", "alone-node"));
      const alone = requests();
      expect(alone.filter((r) => r.includes("kube-ipam.io%2Fblock")).length).toBeGreaterThan(0);
      expect(alone.length).toBeGreaterThan(Math.max(...perAdd.map((r) => r.length)));

      // The pool is full now: the agent says so, and nothing was handed out twice.
      expect([...answered.values()].sort()).toEqual([...pool].sort());
      const over = await add(viaAgent, "over", "new-node-9");
      expect({ exit: over.exitCode, code: over.json?.code }).toEqual({ exit: 1, code: 100 });
      const held = await ls(env, direct);
      expect(held.length).toBe(100);
      for (const a of held) expect(`${a.containerID} holds ${a.ip}`).toBe(`${a.containerID} holds ${answered.get(a.containerID)}`);
      expect(free.every((ip) => held.some((a) => a.ip === ip))).toBe(true);
    });
  }, 90_000);

  test("addresses released and claimed behind the agent's back: exactly those are handed out, never twice, never a false exhaustion", async () => {
    await withAgent("behind", async (agent) => {
      const pool = addresses("10.92.0", 10, 39);
      const { viaAgent, direct } = network(agent, { subnet: "10.92.0.0/24", rangeStart: "10.92.0.10", rangeEnd: "10.92.0.39" });
      const answered = new Map<string, string>();
      answered.set("warm", await mustAdd(viaAgent, "warm", "node-0"));
      await viewWatched(direct.name);
      // The rest of the pool taken directly: the agent learns of it only through its watch.
      const ips = await mapLimit(Array.from({ length: 29 }, (_, i) => i), 6, (i) => mustAdd(direct, `d-${i}`, `d-node-${i % 5}`));
      ips.forEach((ip, i) => answered.set(`d-${i}`, ip));
      expect([...answered.values()].sort()).toEqual([...pool].sort());
      const full = await add(viaAgent, "full", "node-1");
      expect(full.json?.code).toBe(100);

      // Three released behind its back, then two of them claimed behind its back again.
      for (const id of ["d-3", "d-7", "d-11"]) {
        expect((await runPlugin(direct, { command: "DEL", containerID: id })).exitCode).toBe(0);
        answered.delete(id);
      }
      answered.set("d-again-0", await mustAdd(direct, "d-again-0", "d-node-0"));
      answered.set("d-again-1", await mustAdd(direct, "d-again-1", "d-node-1"));
      const left = pool.filter((ip) => ![...answered.values()].includes(ip));
      expect(left.length).toBe(1);
      // Through the agent: the one address left, whatever the view has heard yet; then exhausted.
      expect(await mustAdd(viaAgent, "last", "node-2")).toBe(left[0]!);
      answered.set("last", left[0]!);
      const over = await add(viaAgent, "over", "node-3");
      expect(over.json?.code).toBe(100);
      const held = await ls(env, direct);
      expect(held.map((a) => a.ip).sort()).toEqual([...pool].sort());
      for (const a of held) expect(`${a.containerID} holds ${a.ip}`).toBe(`${a.containerID} holds ${answered.get(a.containerID)}`);
    });
  }, 60_000);

  test("30 ADDs through the agent race 10 direct ones on a pool of exactly 40: all succeed, all distinct, then exhausted", async () => {
    await withAgent("race", async (agent) => {
      const { viaAgent, direct } = network(agent, { subnet: "10.93.0.0/24", rangeStart: "10.93.0.10", rangeEnd: "10.93.0.49" });
      const jobs = Array.from({ length: 40 }, (_, i) => i);
      const replies = await mapLimit(jobs, 10, (i) => add(i % 4 === 3 ? direct : viaAgent, `r-${i}`, `node-${i % 5}`));
      expect(replies.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
      expect(new Set(replies.map(ipOf)).size).toBe(40);
      expect(await agent.served("ADD")).toBe(30);
      expect((await add(viaAgent, "over", "node-0")).json?.code).toBe(100);
      expect((await ls(env, direct)).length).toBe(40);
    });
  }, 60_000);
});
