// A real attachment: Debian's bridge plugin calls kube-ipam as its IPAM, in a network namespace,
// exactly as a container runtime chains them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BINARY, CNI_BIN_DIR, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

const suffix = Math.random().toString(36).slice(2, 8);
const netns = `kipam-${suffix}`;
const bridge = `kipbr${suffix}`;
let dir: ReturnType<typeof tempDir>;

function sh(cmd: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

beforeAll(() => {
  dir = tempDir();
  const r = sh(["ip", "netns", "add", netns]);
  if (r.code !== 0) throw new Error(`Cannot create network namespace "${netns}" (the test needs root and iproute2): ${r.out}`);
});

afterAll(() => {
  sh(["ip", "netns", "del", netns]);
  sh(["ip", "link", "del", bridge]);
  dir.cleanup();
});

test("bridge + kube-ipam puts the allocated address on eth0 and DEL through bridge releases it", async () => {
  const conf = fileNetConf(dir.path, { subnet: "10.231.0.0/24", rangeStart: "10.231.0.10", rangeEnd: "10.231.0.20" }, {
    name: "bridge-net",
    type: "bridge",
    bridge,
    isGateway: true,
  });
  const confPath = join(dir.path, "bridge.conf");
  writeFileSync(confPath, JSON.stringify(conf));
  const call = {
    containerID: `bridge-${suffix}`,
    netns: `/var/run/netns/${netns}`,
    ifName: "eth0",
    path: `${dirname(BINARY)}:${CNI_BIN_DIR}`,
    args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;IgnoreUnknown=1",
  };

  const add = await runPlugin(conf, { command: "ADD", ...call }, join(CNI_BIN_DIR, "bridge"));
  expect(add.exitCode).toBe(0);
  const address: string = add.json.ips[0].address;
  expect(address).toBe("10.231.0.10/24");

  const shown = sh(["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"]);
  expect(shown.out).toContain(`inet ${address}`);

  const held = await runCli(["ls", "--conf", confPath, "-o", "json"]);
  expect(held.json).toMatchObject([{ ip: "10.231.0.10", podName: "web-1", podNamespace: "default", ifName: "eth0" }]);

  const del = await runPlugin(conf, { command: "DEL", ...call }, join(CNI_BIN_DIR, "bridge"));
  expect(del.exitCode).toBe(0);
  expect(sh(["ip", "-n", netns, "link", "show", "eth0"]).code).not.toBe(0);
  expect((await runCli(["ls", "--conf", confPath, "-o", "json"])).json).toEqual([]);
});
