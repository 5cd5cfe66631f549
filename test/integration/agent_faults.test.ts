// The agent is an accelerator, never a dependency: killed at any instant, frozen, silent, or of another
// build, the plugin still answers every request, and no address is ever held twice.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ACCEPT_BUDGET_MS } from "../../src/agent/protocol.ts";
import { type Agent, metricValue, startAgent } from "../support/agent.ts";
import { eventually } from "../support/eventually.ts";
import { etcdNetConf, fileNetConf, listAllocations, runPlugin } from "../support/plugin.ts";
import { useCluster } from "../support/fixtures.ts";

const env = useCluster();

const addressOf = (r: { json: any }): string => r.json.ips[0].address.split("/")[0];

function logLines(conf: { ipam: { logFile: string } }): any[] {
  if (!existsSync(conf.ipam.logFile)) return [];
  return readFileSync(conf.ipam.logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

/** The CNI runtime's way: an ADD that failed is tried again, a few times. */
async function addWithRetries(conf: unknown, id: string, attempts = 5) {
  let last;
  for (let i = 0; i < attempts; i++) {
    last = await runPlugin(conf, { command: "ADD", containerID: id, env: { KUBE_IPAM_NODE_NAME: `node-${id.length % 3}` } });
    if (last.exitCode === 0) return { reply: last, tries: i + 1 };
    // Every failure is a CNI error on stdout, never a crash or a half-written answer.
    expect(typeof last.json.code).toBe("number");
    expect(typeof last.json.msg).toBe("string");
  }
  throw new Error(`ADD ${id} failed ${attempts} times: ${last!.stdout}`);
}

const stores = [
  ["etcd", (socket: string, d: string) => etcdNetConf(env.etcd.endpoint, d, { agentSocket: socket, subnet: "10.44.0.0/24", rangeStart: "10.44.0.10", rangeEnd: "10.44.0.69" })],
  ["the embedded store", (socket: string, d: string) => fileNetConf(d, { agentSocket: socket, subnet: "10.44.0.0/24", rangeStart: "10.44.0.10", rangeEnd: "10.44.0.69" })],
] as const;

describe.each(stores)("agent SIGKILLed at random instants, %s", (_name, makeConf) => {
  test("60 concurrent ADDs on a pool of exactly 60: all succeed (with retries), none twice; DEL of all frees all", async () => {
    const d = join(env.dir.path, `kill-${_name.length}`);
    let agent: Agent = await startAgent(d);
    const conf = makeConf(agent.socket, d);
    const ids = Array.from({ length: 60 }, (_, i) => `pod-${i}`);

    let adding = true;
    let kills = 0;
    // The first kill comes as soon as the agent has answered one ADD, so it lands while the others are in
    // flight however fast they are (on a quiet machine all 60 were answered before a first random instant);
    // later kills at random instants.
    let firstAnswered!: () => void;
    const answered = new Promise<void>((r) => (firstAnswered = r));
    const killer = (async () => {
      await answered;
      while (adding) {
        await agent.kill();
        kills++;
        agent = await startAgent(d);
        await Bun.sleep(10 + Math.random() * 120); // a random instant, not a timing assertion
      }
    })();
    const adds = await Promise.all(ids.map((id) => addWithRetries(conf, id).finally(firstAnswered)));
    adding = false;
    await killer;

    expect(kills).toBeGreaterThan(0);
    const addresses = adds.map((a) => addressOf(a.reply));
    expect(new Set(addresses).size).toBe(60);
    const held = await listAllocations(conf, d);
    expect(held.length).toBe(60);
    expect(new Set(held.map((a: any) => a.containerID)).size).toBe(60);
    for (const a of held) expect(addresses[ids.indexOf(a.containerID)]).toBe(a.ip);
    // Some were served by an agent, some by the plugin itself after a kill.
    const served = logLines(conf).filter((l) => l.msg === "ADD ok").map((l) => l.servedBy);
    if (process.env.AGENT_CHAOS_DEBUG) {
      console.log(kills, adds.map((a) => a.tries).join(""), logLines(conf).map((l) => l.agentFallback ?? l.code).filter(Boolean));
    }
    expect(served).toContain("agent");
    expect(served).toContain("plugin");

    for (const id of ids) expect((await runPlugin(conf, { command: "DEL", containerID: id })).exitCode).toBe(0);
    expect(await listAllocations(conf, d)).toEqual([]);
    await agent.stop();
  }, 120_000);
});

describe("an agent that cannot serve", () => {
  test("a plugin of another build runs the request itself; the agent counts the refusal", async () => {
    const other = join(env.dir.path, "kube-ipam-other");
    const build = Bun.spawnSync(["bash", resolve(import.meta.dir, "../../scripts/build.sh")], {
      env: { ...process.env, KUBE_IPAM_BUILD: "0.0.1+another", OUT: other },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(build.exitCode).toBe(0);
    const agent = await startAgent(join(env.dir.path, "skew"));
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: agent.socket, subnet: "10.45.0.0/24" });
    const r = await runPlugin(conf, { command: "ADD", containerID: "skewed" }, other);
    expect(r.exitCode).toBe(0);
    expect(await agent.served("ADD")).toBe(0);
    expect(metricValue(await agent.metrics(), "kube_ipam_agent_refused_total", { reason: "build" })).toBe(1);
    const line = logLines(conf).find((l) => l.containerID === "skewed");
    expect(line.servedBy).toBe("plugin");
    expect(line.agentFallback).toContain("serves only plugins of that build, not \"0.0.1+another\"");
    // Its own build's plugin is served, and sees the other build's allocation as its own.
    const same = await runPlugin(conf, { command: "ADD", containerID: "skewed" });
    expect(addressOf(same)).toBe(addressOf(r));
    expect(await agent.served("ADD")).toBe(1);
    await agent.stop();
  }, 60_000);

  test("a socket that accepts and never answers costs the forwarding budget, then the plugin runs itself", async () => {
    const socket = join(env.dir.path, "silent.sock");
    const silent = Bun.listen({ unix: socket, socket: { data() {} } });
    try {
      const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: socket, subnet: "10.46.0.0/24" });
      const started = performance.now();
      const r = await runPlugin(conf, { command: "ADD", containerID: "silent" });
      const ms = performance.now() - started;
      expect(r.exitCode).toBe(0);
      expect(logLines(conf).find((l) => l.containerID === "silent").agentFallback)
        .toBe(`agent at "${socket}" did not accept within ${ACCEPT_BUDGET_MS} ms`);
      // It did not wait for an answer (30 s): only for "accepted". A bound, not a measurement.
      expect(ms).toBeLessThan(ACCEPT_BUDGET_MS + 10_000);
    } finally {
      silent.stop(true);
    }
  }, 30_000);

  test("a frozen agent (SIGSTOP): the plugin runs itself; resumed, the agent drops the stale request", async () => {
    const agent = await startAgent(join(env.dir.path, "frozen"));
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: agent.socket, subnet: "10.47.0.0/24" });
    agent.proc.kill("SIGSTOP");
    let r;
    try {
      r = await runPlugin(conf, { command: "ADD", containerID: "while-frozen" });
    } finally {
      agent.proc.kill("SIGCONT");
    }
    expect(r.exitCode).toBe(0);
    expect((await runPlugin(conf, { command: "DEL", containerID: "while-frozen" })).exitCode).toBe(0);
    // The agent read the ADD only after the plugin had moved on: it must not run it now.
    await eventually("stale requests dropped", async () => metricValue(await agent.metrics(), "kube_ipam_agent_refused_total", { reason: "late" }), (n) => n === 1);
    expect(await agent.served("ADD")).toBe(0);
    expect(await listAllocations(conf, env.dir.path)).toEqual([]);
    await agent.stop();
  }, 30_000);
});
