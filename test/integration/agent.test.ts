// The node agent as it runs on a node: a real `kube-ipam agent` process, the built binary as the plugin,
// a real etcd. The plugin forwards to the agent when it can and runs the request itself when it cannot;
// either way the answer is the same and no address is ever held twice.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Agent, startAgent } from "../support/agent.ts";
import { etcdNetConf, fileNetConf, listAllocations, mapLimit, runPlugin } from "../support/plugin.ts";
import { useCluster } from "../support/fixtures.ts";

const env = useCluster();

const addressOf = (r: { json: any }): string => r.json.ips[0].address.split("/")[0];

/** The plugin's log lines for `containerID` (JSON lines in the network's log file). */
function logLines(conf: { ipam: { logFile: string } }, containerID: string): any[] {
  if (!existsSync(conf.ipam.logFile)) return [];
  return readFileSync(conf.ipam.logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.containerID === containerID);
}

describe("kube-ipam agent", () => {
  test("serves ADD, CHECK and DEL; stopped, the plugin runs them itself; restarted, serves again", async () => {
    const agentDir = join(env.dir.path, "a1");
    let agent: Agent = await startAgent(agentDir);
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: agent.socket, subnet: "10.41.0.0/24" });
    const add = (id: string) => runPlugin(conf, { command: "ADD", containerID: id });

    // The socket is root-only in a root-only directory: whoever can write to it can allocate addresses.
    expect(statSync(agent.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(agentDir, "run")).mode & 0o777).toBe(0o700);

    const viaAgent = await mapLimit(["a", "b", "c", "d", "e"], 5, add);
    for (const r of viaAgent) expect(r.exitCode).toBe(0);
    expect(await agent.served("ADD")).toBe(5);
    expect(logLines(conf, "a")[0]).toMatchObject({ msg: "ADD ok", servedBy: "agent" });
    // A retried ADD gets the same address, whoever serves it.
    expect(addressOf(await add("a"))).toBe(addressOf(viaAgent[0]!));
    expect((await runPlugin(conf, { command: "CHECK", containerID: "a" })).exitCode).toBe(0);
    expect(await agent.served("CHECK")).toBe(1);

    expect(await agent.stop()).toBe(0);
    expect(existsSync(agent.socket)).toBe(false);
    const direct = await mapLimit(["f", "g"], 2, add);
    for (const r of direct) expect(r.exitCode).toBe(0);
    expect(addressOf(await add("b"))).toBe(addressOf(viaAgent[1]!));
    expect(logLines(conf, "f")[0]).toMatchObject({ msg: "ADD ok", servedBy: "plugin", agentFallback: `agent at "${agent.socket}": no socket` });

    agent = await startAgent(agentDir);
    const again = await add("h");
    expect(again.exitCode).toBe(0);
    expect(await agent.served("ADD")).toBe(1);
    const all = [...viaAgent, ...direct, again].map(addressOf);
    expect(new Set(all).size).toBe(8);

    for (const id of ["a", "b", "c", "d", "e", "f", "g", "h"]) expect((await runPlugin(conf, { command: "DEL", containerID: id })).exitCode).toBe(0);
    expect(await agent.served("DEL")).toBe(8);
    expect(await listAllocations(conf, env.dir.path)).toEqual([]);
    await agent.stop();
  }, 60_000);

  test("a request whose characters arrive split across reads is read whole (clients other than the forwarder may send raw UTF-8)", async () => {
    const agent = await startAgent(join(env.dir.path, "a-utf8"));
    try {
      const build = /kube_ipam_build_info\{build="([^"]+)"/.exec(await agent.metrics())![1]!;
      const conf = fileNetConf(join(env.dir.path, "utf8"), { agentSocket: agent.socket }, { name: "réseau-日本-🌐" });
      const line = `${JSON.stringify({
        build, startedAt: Date.now(), acceptBy: Date.now() + 5000, hostname: "node-u",
        env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "u1", CNI_NETNS: "/proc/self/ns/net", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" },
        stdin: JSON.stringify(conf),
      })}\n`;
      const bytes = Buffer.from(line, "utf8");
      const cut = bytes.indexOf(Buffer.from("日", "utf8")) + 1; // inside the character's three bytes
      const replies: string[] = [];
      const done = Promise.withResolvers<void>();
      const socket = await Bun.connect({
        unix: agent.socket,
        socket: { data: (_s, d) => void replies.push(d.toString()), close: () => done.resolve(), error: (_s, e) => done.reject(e) },
      });
      socket.write(bytes.subarray(0, cut));
      socket.flush();
      await Bun.sleep(100); // setup: the first part is read on its own
      socket.write(bytes.subarray(cut));
      await done.promise;
      const answer = JSON.parse(replies.join("").trim().split("\n").at(-1)!);
      // The name is refused, and the message quotes it: exactly as sent, and as the plugin itself words it.
      const direct = await runPlugin({ ...conf, ipam: { ...conf.ipam, agentSocket: "" } }, { command: "ADD", containerID: "u1" });
      expect(answer).toEqual({ stdout: direct.stdout.trim(), exitCode: 1 });
      expect(JSON.parse(answer.stdout).msg).toContain('"réseau-日本-🌐"');
    } finally {
      await agent.stop();
    }
  }, 30_000);

  test("errors come back exactly as the plugin prints them, with its exit status", async () => {
    const agent = await startAgent(join(env.dir.path, "a2"));
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: agent.socket, subnet: "10.42.0.0/30" });
    expect((await runPlugin(conf, { command: "ADD", containerID: "one" })).exitCode).toBe(0);
    const viaAgent = await runPlugin(conf, { command: "ADD", containerID: "two" });
    await agent.stop();
    const direct = await runPlugin(conf, { command: "ADD", containerID: "two" });
    expect(viaAgent.exitCode).toBe(1);
    expect(viaAgent.json.code).toBe(100);
    expect(viaAgent.stdout).toBe(direct.stdout);
    expect(viaAgent.stderr).toBe("");
  }, 30_000);

  test("overlapping ADDs of one attachment (a runtime's retry of a slow ADD) get one address, through the agent or not", async () => {
    const agent = await startAgent(join(env.dir.path, "a4"));
    // etcd settles overlapping attempts itself (the claim's transaction reads the owner's older claims), so
    // it does not matter which of them the agent served and which fell back to the plugin.
    for (const agentSocket of [agent.socket, ""]) {
      const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket, subnet: "10.43.0.0/24" });
      const adds = await Promise.all(Array.from({ length: 6 }, () => runPlugin(conf, { command: "ADD", containerID: "same" })));
      for (const r of adds) expect(r.exitCode).toBe(0);
      expect(new Set(adds.map(addressOf)).size).toBe(1);
      expect((await listAllocations(conf, env.dir.path)).map((a) => a.ip)).toEqual([addressOf(adds[0]!)]);
    }
    await agent.stop();
  }, 30_000);

  test("on the embedded store too", async () => {
    const agent = await startAgent(join(env.dir.path, "a3"));
    const conf = fileNetConf(join(env.dir.path, "f3"), { agentSocket: agent.socket });
    const r = await runPlugin(conf, { command: "ADD", containerID: "x" });
    expect(r.exitCode).toBe(0);
    expect(await agent.served("ADD")).toBe(1);
    expect((await listAllocations(conf, env.dir.path)).map((a) => a.ip)).toEqual([addressOf(r)]);
    await agent.stop();
  }, 30_000);
});
