// Properties through the built binary: random network configs, CNI_ARGS, container IDs and interface
// names, each run as a runtime runs the plugin. Whatever the input, the plugin exits 0 or 1, prints
// one JSON document (or nothing, for a successful DEL), answers an error with a documented code, and
// never shows a stack trace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import { cniArgs, mutatedConfig, nearContainerID, nearIfName, structuredConfig } from "../support/arbitraries.ts";
import { type CniReply, fileNetConf, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir("kube-ipam-props-");
});
afterAll(() => dir.cleanup());

/** Codes a bad input may get (1 version, 3 CHECK of an unknown container, 4, 6, 7) and those of a valid one (pool full, ...). */
const DOCUMENTED = [1, 3, 4, 6, 7, 100, 101, 102, 103];

function expectWellFormed(r: CniReply, command: string): void {
  expect([0, 1]).toContain(r.exitCode);
  expect(r.stderr).not.toMatch(/\n\s+at |Internal error/);
  if (r.exitCode === 0 && command !== "ADD") {
    expect(r.stdout).toBe("");
    return;
  }
  // Exactly one JSON document, then a newline.
  expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  if (r.exitCode === 0) {
    expect(typeof r.json.cniVersion).toBe("string");
    return;
  }
  expect(DOCUMENTED).toContain(r.json.code);
  expect(typeof r.json.msg).toBe("string");
  expect(r.json.msg.length).toBeGreaterThan(0);
  expect(`${r.json.msg}\n${r.json.details ?? ""}`).not.toMatch(/\n\s+at |Internal error/);
}

/** The config with the embedded store, log and files in the test's directory, and no etcd or agent. */
function confined(conf: unknown): unknown {
  if (typeof conf !== "object" || conf === null || Array.isArray(conf)) return conf;
  const ipam = (conf as Record<string, unknown>).ipam;
  if (typeof ipam !== "object" || ipam === null || Array.isArray(ipam)) return conf;
  const i = ipam as Record<string, unknown>;
  delete i.etcdConfig;
  i.dataDir = join(dir.path, "data");
  i.logFile = join(dir.path, "kube-ipam.log");
  i.agentSocket = "";
  if (i.resolvConf !== "/etc/resolv.conf") delete i.resolvConf;
  if (typeof i.kubeConfig !== "string" || !i.kubeConfig.startsWith("/etc/kubernetes/")) delete i.kubeConfig;
  return conf;
}

const noNul = (s: string) => !s.includes("\0");
let runs = 0;

describe("the plugin binary on random input", () => {
  test("random network configs", async () => {
    const config = fc.oneof(structuredConfig, mutatedConfig).map(confined);
    await fc.assert(fc.asyncProperty(config, fc.constantFrom("ADD", "ADD", "DEL", "CHECK"), async (conf, command) => {
      const r = await runPlugin(conf, { command, containerID: `c${runs++}` });
      expectWellFormed(r, command);
    }), { numRuns: 30 });
  }, 60_000);

  test("random CNI_ARGS, container IDs and interface names on a valid config", async () => {
    const conf = fileNetConf(dir.path, { subnet: "10.20.0.0/24", agentSocket: "" }, { name: "envnet" });
    const env = fc.record({
      args: cniArgs.filter(noNul),
      containerID: nearContainerID.filter(noNul),
      ifName: nearIfName.filter(noNul),
      command: fc.constantFrom("ADD", "ADD", "DEL"),
    });
    await fc.assert(fc.asyncProperty(env, async ({ args, containerID, ifName, command }) => {
      const r = await runPlugin(conf, { command, args, containerID, ifName });
      expectWellFormed(r, command);
    }), { numRuns: 30 });
  }, 60_000);
});

describe("regressions found by the properties, through the binary", () => {
  // JSON.parse takes it; JSON.stringify of it in the error message overflowed the stack: code 999, a stack trace in details.
  test.each([
    ["ipam.routes[0]", (deep: string) => `"routes": [${deep}]`],
    ["ipam.exclude[0]", (deep: string) => `"exclude": [${deep}]`],
  ])("a value nested 100000 deep in %s is code 7 naming it", async (field, member) => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const text = `{"cniVersion": "1.0.0", "name": "deep", "ipam": {"subnet": "10.30.0.0/24", "dataDir": ${JSON.stringify(join(dir.path, "d"))}, ` +
      `"logFile": ${JSON.stringify(join(dir.path, "kube-ipam.log"))}, "agentSocket": "", ${member(deep)}}}`;
    const r = await runPlugin(text, { command: "ADD" });
    expectWellFormed(r, "ADD");
    expect(r.json.code).toBe(7);
    expect(r.json.details).toBe(field);
  });
});
