// One budget for the whole invocation (ipam.timeoutSeconds): against an etcd or a Kubernetes API that
// accepts connections and never answers, every verb ends within the budget (plus a slack for starting
// processes on a loaded machine) with code 11 naming the endpoint, directly and through the agent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startAgent } from "../support/agent.ts";
import { type Blackhole, startBlackhole } from "../support/blackhole.ts";
import { type EtcdServer, startEtcd } from "../support/etcd.ts";
import { type KubeApiServer, makePod, startKubeApiServer } from "../support/kube_apiserver.ts";
import { etcdNetConf, runPlugin, tempDir } from "../support/plugin.ts";

const BUDGET_S = 3;
// Process starts and a loaded 2-core machine; far below what a missing budget would cost (8 s and more).
const SLACK_MS = 2500;

let etcd: EtcdServer;
let api: KubeApiServer;
let hole: Blackhole;
let dir: ReturnType<typeof tempDir>;
let goodKube: string;
let holeKube: string;

beforeAll(async () => {
  dir = tempDir();
  [etcd, api] = await Promise.all([startEtcd(), startKubeApiServer()]);
  await api.setPod(makePod({ name: "web-0" }));
  hole = startBlackhole();
  goodKube = api.writeKubeconfig(join(dir.path, "good"), "token");
  holeKube = api.writeKubeconfig(join(dir.path, "hole"), "token", { server: `https://${hole.address}` });
}, 90_000);
afterAll(async () => {
  hole.stop();
  await api?.stop();
  await etcd.stop();
  dir.cleanup();
});

const POD = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0";

async function timed(conf: unknown, command: string) {
  const started = performance.now();
  const r = await runPlugin(conf, { command, containerID: `c-${command}`, args: POD });
  return { r, ms: performance.now() - started };
}

const conf = (etcdURL: string, ipam: Record<string, unknown>) =>
  ({ ...etcdNetConf(etcdURL, dir.path, { timeoutSeconds: BUDGET_S, agentSocket: "", ...ipam }), cniVersion: "1.1.0" });

describe("ipam.timeoutSeconds", () => {
  test.each(["ADD", "DEL", "CHECK", "STATUS"])("etcd that never answers: %s ends within the budget with code 11 naming it", async (verb) => {
    const { r, ms } = await timed(conf(`http://${hole.address}`, {}), verb);
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(verb === "STATUS" ? 50 : 11);
    expect(r.json.msg).toContain(`http://${hole.address}`);
    expect(ms).toBeLessThan(BUDGET_S * 1000 + SLACK_MS);
  }, 20_000);

  test("a Kubernetes API that never answers: ADD ends within the budget with code 11 naming it", async () => {
    const { r, ms } = await timed(conf(etcd.endpoint, { kubeConfig: holeKube }), "ADD");
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain(`https://${hole.address}`);
    expect(ms).toBeLessThan(BUDGET_S * 1000 + SLACK_MS);
  }, 20_000);

  test("both never answer: ADD ends within the budget with code 11", async () => {
    const { r, ms } = await timed(conf(`http://${hole.address}`, { kubeConfig: holeKube }), "ADD");
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain(hole.address);
    expect(ms).toBeLessThan(BUDGET_S * 1000 + SLACK_MS);
  }, 20_000);

  test("a first etcd endpoint that never answers and a second that works: ADD succeeds within the budget", async () => {
    const started = performance.now();
    const r = await runPlugin(etcdNetConf(`http://${hole.address},${etcd.endpoint}`, dir.path, { agentSocket: "", kubeConfig: goodKube, subnet: "10.49.0.0/24" }),
      { command: "ADD", containerID: "failover", args: POD });
    expect(r.exitCode).toBe(0);
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 30_000);

  test("through the agent: the agent's answer keeps the plugin's budget", async () => {
    const agent = await startAgent(join(dir.path, "agent"));
    try {
      const { r, ms } = await timed(conf(`http://${hole.address}`, { agentSocket: agent.socket }), "ADD");
      expect(r.json.code).toBe(11);
      expect(r.json.msg).toContain(`http://${hole.address}`);
      expect(ms).toBeLessThan(BUDGET_S * 1000 + SLACK_MS);
      expect(await agent.served("ADD")).toBe(1);
    } finally {
      await agent.stop();
    }
  }, 30_000);

  test("refused when not a number of seconds in (0, 120]", async () => {
    for (const bad of [0, -1, "15", 121]) {
      const r = await runPlugin(conf(etcd.endpoint, { timeoutSeconds: bad }), { command: "ADD", containerID: "bad" });
      expect(r.json.code).toBe(7);
      expect(r.json.msg).toContain("ipam.timeoutSeconds");
    }
  });
});
