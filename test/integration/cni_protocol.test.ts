// The CNI protocol as a container runtime sees it: the real binary, CNI_* environment, config on
// stdin, one JSON document on stdout. Every test works in its own temporary directory.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CniCall, type CniReply, fileNetConf, listAllocations, runPlugin, tempDir } from "../support/plugin.ts";

const VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-proto-");
});
afterEach(() => dir.cleanup());

/** A failed verb: exit status 1 and exactly one JSON error document on stdout, nothing else. */
function expectCniError(r: CniReply, code: number, msg?: string): void {
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  expect(Object.keys(r.json).every((k) => ["cniVersion", "code", "msg", "details"].includes(k))).toBe(true);
  expect(typeof r.json.cniVersion).toBe("string");
  expect(typeof r.json.msg).toBe("string");
  expect(r.json.code).toBe(code);
  if (msg !== undefined) expect(r.json.msg).toBe(msg);
}

/** A successful verb with no result (DEL, CHECK, GC, STATUS): exit 0, empty stdout. */
function expectSilentSuccess(r: CniReply): void {
  expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 0, stdout: "" });
}

/** A successful ADD: exit 0 and the result as one JSON document. */
function expectResult(r: CniReply): any {
  expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
  expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  return r.json;
}

const lsJSON = (conf: unknown) => listAllocations(conf, dir.path);

const DUAL = {
  subnet: undefined,
  ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00:10::/64" }]],
  routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
};

describe("VERSION", () => {
  test("prints every supported version and exits 0", async () => {
    const r = await runPlugin("", { command: "VERSION", omit: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"] });
    expect(r.exitCode).toBe(0);
    expect(r.json).toEqual({ cniVersion: "1.1.0", supportedVersions: [...VERSIONS] });
    expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  });

  test("answers whatever config is on stdin", async () => {
    const r = await runPlugin({ cniVersion: "0.4.0" }, { command: "VERSION" });
    expect(r.exitCode).toBe(0);
    expect(r.json.supportedVersions).toEqual([...VERSIONS]);
  });
});

describe("ADD result shape per version", () => {
  const legacy = (v: string) => v === "0.1.0" || v === "0.2.0";
  const withFamily = (v: string) => v.startsWith("0.3.") || v === "0.4.0";

  for (const v of VERSIONS) {
    test(`${v}: single stack`, async () => {
      const conf = fileNetConf(dir.path, { routes: [{ dst: "0.0.0.0/0" }] }, { cniVersion: v });
      const json = expectResult(await runPlugin(conf, { command: "ADD" }));
      if (legacy(v)) {
        expect(json).toEqual({
          cniVersion: v,
          ip4: { ip: "10.10.0.2/24", gateway: "10.10.0.1", routes: [{ dst: "0.0.0.0/0" }] },
        });
      } else if (withFamily(v)) {
        expect(json).toEqual({
          cniVersion: v,
          ips: [{ version: "4", address: "10.10.0.2/24", gateway: "10.10.0.1" }],
          routes: [{ dst: "0.0.0.0/0" }],
        });
      } else {
        expect(json).toEqual({
          cniVersion: v,
          ips: [{ address: "10.10.0.2/24", gateway: "10.10.0.1" }],
          routes: [{ dst: "0.0.0.0/0" }],
        });
      }
    });

    test(`${v}: dual stack (two range sets)`, async () => {
      const conf = fileNetConf(dir.path, DUAL, { cniVersion: v });
      const json = expectResult(await runPlugin(conf, { command: "ADD" }));
      if (legacy(v)) {
        expect(json).toEqual({
          cniVersion: v,
          ip4: { ip: "10.10.0.2/24", gateway: "10.10.0.1", routes: [{ dst: "0.0.0.0/0" }] },
          ip6: { ip: "fd00:10::2/64", gateway: "fd00:10::1", routes: [{ dst: "::/0" }] },
        });
      } else if (withFamily(v)) {
        expect(json).toEqual({
          cniVersion: v,
          ips: [
            { version: "4", address: "10.10.0.2/24", gateway: "10.10.0.1" },
            { version: "6", address: "fd00:10::2/64", gateway: "fd00:10::1" },
          ],
          routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
        });
      } else {
        expect(json).toEqual({
          cniVersion: v,
          ips: [
            { address: "10.10.0.2/24", gateway: "10.10.0.1" },
            { address: "fd00:10::2/64", gateway: "fd00:10::1" },
          ],
          routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
        });
      }
    });
  }

  test("a config without cniVersion is 0.1.0", async () => {
    const conf: Record<string, unknown> = fileNetConf(dir.path);
    delete conf.cniVersion;
    const json = expectResult(await runPlugin(conf, { command: "ADD" }));
    expect(json).toEqual({ cniVersion: "0.1.0", ip4: { ip: "10.10.0.2/24", gateway: "10.10.0.1" } });
  });

  test("resolvConf becomes dns", async () => {
    const resolv = join(dir.path, "resolv.conf");
    writeFileSync(resolv, "# comment\nnameserver 10.96.0.10\nnameserver 10.96.0.11\nsearch ns.svc.cluster.local svc.cluster.local\n" +
      "domain cluster.local\noptions ndots:5 timeout:1\n");
    const json = expectResult(await runPlugin(fileNetConf(dir.path, { resolvConf: resolv }), { command: "ADD" }));
    expect(json.dns).toEqual({
      nameservers: ["10.96.0.10", "10.96.0.11"],
      domain: "cluster.local",
      search: ["ns.svc.cluster.local", "svc.cluster.local"],
      options: ["ndots:5", "timeout:1"],
    });
  });
});

describe("environment validation", () => {
  test("every missing required variable is named at once", async () => {
    const r = await runPlugin(fileNetConf(dir.path), {
      command: "ADD",
      omit: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
    });
    expectCniError(r, 4, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing");
  });

  test("an empty variable counts as missing", async () => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", netns: "", omit: ["CNI_PATH"] });
    expectCniError(r, 4, "required env variables [CNI_NETNS,CNI_PATH] missing");
  });

  test("DEL does not need CNI_NETNS", async () => {
    expectSilentSuccess(await runPlugin(fileNetConf(dir.path), { command: "DEL", omit: ["CNI_NETNS"] }));
  });

  test.each([["-starts-with-dash"], ["has space"], ["has/slash"], ["ümlaut"], [".dot"]])("container ID %p is refused", async (id) => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", containerID: id });
    expectCniError(r, 4,
      'Invalid CNI_CONTAINERID: invalid characters in containerID: letters, digits, "_", "." and "-", starting with a letter or digit');
    expect(r.json.details).toBe(id);
  });

  // The embedded store names a file after it: thousands of characters were code 5, ENAMETOOLONG.
  test("a container ID longer than 128 bytes is refused naming the limit, nothing written", async () => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", containerID: "a".repeat(4000) });
    expectCniError(r, 4, "Invalid CNI_CONTAINERID: containerID is too long: 4000 bytes, at most 128");
    expect(existsSync(join(dir.path, "data"))).toBe(false);
  });

  test("a container ID of 128 bytes is accepted, and released", async () => {
    const containerID = "f".repeat(128);
    expectResult(await runPlugin(fileNetConf(dir.path), { command: "ADD", containerID }));
    expectSilentSuccess(await runPlugin(fileNetConf(dir.path), { command: "DEL", containerID }));
    expect(await lsJSON(fileNetConf(dir.path))).toEqual([]);
  });

  test("a container ID with letters, digits, _ . - is accepted", async () => {
    expectResult(await runPlugin(fileNetConf(dir.path), { command: "ADD", containerID: "Abc_1.2-3" }));
  });

  test.each([
    ["a23456789012345x", "interface name is too long: at most 15 bytes"],
    ["e\x01", "interface name contains control characters"], // was written into a file name
    ["e\x7f", "interface name contains control characters"],
    [".", "interface name is . or .."],
    ["..", "interface name is . or .."],
    ["eth/0", "interface name contains / or : or whitespace characters"],
    ["eth:0", "interface name contains / or : or whitespace characters"],
    ["eth 0", "interface name contains / or : or whitespace characters"],
    ["eth\t0", "interface name contains / or : or whitespace characters"],
  ])("interface name %p is refused", async (ifName, msg) => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", ifName });
    expectCniError(r, 4, `Invalid CNI_IFNAME: ${msg}`);
    expect(r.json.details).toBe(ifName);
    expect(existsSync(join(dir.path, "data"))).toBe(false);
  });

  test("a 15-character interface name is accepted", async () => {
    expectResult(await runPlugin(fileNetConf(dir.path), { command: "ADD", ifName: "a23456789012345" }));
  });

  test("an unknown CNI_COMMAND is refused", async () => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "FROB" });
    expectCniError(r, 4, "unknown CNI_COMMAND: FROB");
  });
});

describe("config decoding and versions", () => {
  // Network configs are kilobytes: more than 1 MiB is refused before it is read whole or parsed.
  test("stdin over 1 MiB is code 6, a config of nearly 1 MiB is read", async () => {
    const conf = fileNetConf(dir.path);
    const padded = (n: number) => {
      const text = JSON.stringify({ ...conf, pad: "" });
      return JSON.stringify({ ...conf, pad: "x".repeat(n - text.length) });
    };
    expect(padded(1024 * 1024)).toHaveLength(1024 * 1024);
    expectResult(await runPlugin(padded(1024 * 1024), { command: "ADD" }));
    const r = await runPlugin(`${padded(1024 * 1024)} `, { command: "ADD", containerID: "c2" });
    expectCniError(r, 6, "Cannot decode network config from stdin: it is larger than 1048576 bytes (network configs are kilobytes)");
    const huge = await runPlugin(" ".repeat(50 * 1024 * 1024), { command: "ADD", containerID: "c3" });
    expectCniError(huge, 6);
  });

  test("malformed stdin JSON is code 6", async () => {
    const r = await runPlugin('{"cniVersion": "1.0.0", "name": ', { command: "ADD" });
    expectCniError(r, 6);
    expect(r.json.msg).toStartWith("Cannot decode network config from stdin: ");
  });

  test("a missing network name is code 7", async () => {
    const conf: Record<string, unknown> = fileNetConf(dir.path);
    delete conf.name;
    expectCniError(await runPlugin(conf, { command: "ADD" }), 7, "Invalid name: the network name is missing");
  });

  test("an unsupported cniVersion is code 1", async () => {
    const r = await runPlugin(fileNetConf(dir.path, {}, { cniVersion: "0.5.0" }), { command: "ADD" });
    expectCniError(r, 1, "incompatible CNI versions");
    expect(r.json.details).toBe(`config is "0.5.0", plugin supports ${JSON.stringify(VERSIONS)}`);
  });

  test("CHECK needs cniVersion 0.4.0", async () => {
    const r = await runPlugin(fileNetConf(dir.path, {}, { cniVersion: "0.3.1" }), { command: "CHECK" });
    expectCniError(r, 1, "config version does not allow CHECK");
    expect(r.json).toEqual({
      cniVersion: "0.3.1",
      code: 1,
      msg: "config version does not allow CHECK",
      details: "CHECK needs cniVersion 0.4.0 or later; the config says 0.3.1",
    });
  });

  test.each([["GC"], ["STATUS"]])("%s needs cniVersion 1.1.0", async (command) => {
    const r = await runPlugin(fileNetConf(dir.path, {}, { cniVersion: "1.0.0" }), { command });
    expectCniError(r, 1, `config version does not allow ${command}`);
    expect(r.json.details).toBe(`${command} needs cniVersion 1.1.0 or later; the config says 1.0.0`);
    expect(r.json.cniVersion).toBe("1.0.0");
  });
});

describe("CNI_ARGS", () => {
  test("an unknown key is refused", async () => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", args: "K8S_POD_NAME=web-0;FOO=bar" });
    expectCniError(r, 4, 'CNI_ARGS: unknown args ["FOO"]: set IgnoreUnknown=1 to allow them');
    expect(await lsJSON(fileNetConf(dir.path))).toEqual([]);
  });

  test.each([["IgnoreUnknown=1"], ["IgnoreUnknown=true"]])("an unknown key is accepted with %s", async (ignore) => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", args: `${ignore};FOO=bar;K8S_POD_NAME=web-0` });
    expect(expectResult(r).ips).toEqual([{ address: "10.10.0.2/24", gateway: "10.10.0.1" }]);
  });

  test("the Kubernetes keys are recognised", async () => {
    const args = "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=container-1;K8S_POD_UID=u-1";
    expectResult(await runPlugin(fileNetConf(dir.path), { command: "ADD", args }));
  });

  test("a pair without = is refused", async () => {
    const r = await runPlugin(fileNetConf(dir.path), { command: "ADD", args: "K8S_POD_NAME" });
    expectCniError(r, 4, 'CNI_ARGS: invalid pair "K8S_POD_NAME": expected KEY=VALUE');
  });
});

describe("STATUS", () => {
  const v11 = { cniVersion: "1.1.0" };

  test("succeeds on a pool with room", async () => {
    expectSilentSuccess(await runPlugin(fileNetConf(dir.path, {}, v11), { command: "STATUS" }));
  });

  test("is code 50 when the pool is exhausted", async () => {
    const conf = fileNetConf(dir.path, { subnet: "10.10.0.0/30" }, v11);
    expectResult(await runPlugin(conf, { command: "ADD" }));
    const r = await runPlugin(conf, { command: "STATUS" });
    expectCniError(r, 50, 'No free address in network "testnet" range set 10.10.0.0/30 (10.10.0.1-10.10.0.2)');
    // Room again after DEL.
    expectSilentSuccess(await runPlugin(conf, { command: "DEL" }));
    expectSilentSuccess(await runPlugin(conf, { command: "STATUS" }));
  });

  test("is code 50 when any range set is exhausted", async () => {
    const conf = fileNetConf(dir.path, {
      subnet: undefined,
      ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "10.20.0.0/30" }]],
    }, v11);
    expectResult(await runPlugin(conf, { command: "ADD" }));
    const r = await runPlugin(conf, { command: "STATUS" });
    expectCniError(r, 50, 'No free address in network "testnet" range set 10.20.0.0/30 (10.20.0.1-10.20.0.2)');
  });

  test("is code 50 when the data directory is unusable", async () => {
    const file = join(dir.path, "regular-file");
    writeFileSync(file, "not a directory\n");
    const dataDir = join(file, "data");
    const r = await runPlugin(fileNetConf(dir.path, { dataDir }, v11), { command: "STATUS" });
    expectCniError(r, 50);
    expect(r.json.msg).toStartWith(`Store ${dataDir} is not usable: Cannot write to data directory "${dataDir}": ENOTDIR`);
  });
});

test("ADD on an unusable data directory is an I/O error naming it", async () => {
  const file = join(dir.path, "regular-file");
  writeFileSync(file, "not a directory\n");
  const dataDir = join(file, "data");
  const r = await runPlugin(fileNetConf(dir.path, { dataDir }), { command: "ADD" });
  expectCniError(r, 5);
  expect(r.json.msg).toContain(`"${dataDir}/`);
  expect(r.json.msg).toContain("ENOTDIR");
});

describe("CHECK", () => {
  test("succeeds after ADD and fails after DEL", async () => {
    const conf = fileNetConf(dir.path, {}, { cniVersion: "1.0.0" });
    const result = expectResult(await runPlugin(conf, { command: "ADD" }));
    const withPrev = { ...conf, prevResult: result };
    expectSilentSuccess(await runPlugin(withPrev, { command: "CHECK" }));
    expectSilentSuccess(await runPlugin(conf, { command: "DEL" }));
    expectCniError(await runPlugin(withPrev, { command: "CHECK" }), 3,
      'Container "container-1" interface "eth0" holds no address in network "testnet"');
  });

  test("fails when prevResult names an address the container does not hold", async () => {
    const conf = fileNetConf(dir.path, {}, { cniVersion: "0.4.0" });
    expectResult(await runPlugin(conf, { command: "ADD" }));
    const prevResult = { cniVersion: "0.4.0", ips: [{ version: "4", address: "10.10.0.77/24" }] };
    expectCniError(await runPlugin({ ...conf, prevResult }, { command: "CHECK" }), 3,
      'Address "10.10.0.77" of prevResult is not held by container "container-1" interface "eth0" in network "testnet"');
  });

  test("fails for another interface of the same container", async () => {
    const conf = fileNetConf(dir.path, {}, { cniVersion: "1.1.0" });
    expectResult(await runPlugin(conf, { command: "ADD" }));
    expectCniError(await runPlugin(conf, { command: "CHECK", ifName: "net1" }), 3,
      'Container "container-1" interface "net1" holds no address in network "testnet"');
  });
});

describe("GC", () => {
  test("releases exactly the unlisted allocations of this node", async () => {
    const onA = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0" });
    const onB = fileNetConf(dir.path, { nodeName: "node-b" }, { cniVersion: "1.1.0" });
    const calls: [unknown, CniCall][] = [
      [onA, { command: "ADD", containerID: "keep", ifName: "eth0" }],
      [onA, { command: "ADD", containerID: "keep", ifName: "net1" }],
      [onA, { command: "ADD", containerID: "stale", ifName: "eth0" }],
      [onB, { command: "ADD", containerID: "other-node", ifName: "eth0" }],
    ];
    for (const [conf, call] of calls) expectResult(await runPlugin(conf, call));
    expect((await lsJSON(onA)).length).toBe(4);

    const gc = { ...onA, "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }] };
    expectSilentSuccess(await runPlugin(gc, { command: "GC", omit: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] }));

    const left = (await lsJSON(onA)).map((a) => `${a.containerID}/${a.ifName}@${a.node}`).sort();
    expect(left).toEqual(["keep/eth0@node-a", "other-node/eth0@node-b"]);
  });

  test("removes what killed ADDs left on the embedded store once it is a minute old, and nothing else", async () => {
    const conf = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0", name: "gc-debris" });
    expectResult(await runPlugin(conf, { command: "ADD", containerID: "live" }));
    const net = join(dir.path, "data", "gc-debris");
    // Claims killed after writing their owner entry but before linking ips/<hex>, an old one and a young
    // one; and a record a killed change left in tmp/.
    const owners = join(net, "owners");
    const stale = join(owners, "killed:eth0:0a0a0009");
    const young = join(owners, "starting:eth0:0a0a000a");
    mkdirSync(join(net, "tmp"), { recursive: true });
    writeFileSync(stale, "{\"ip\":");
    writeFileSync(young, "{\"ip\":");
    writeFileSync(join(net, "tmp", "123.0.0"), "{}");
    const old = new Date(Date.now() - 120_000);
    utimesSync(stale, old, old);
    utimesSync(join(net, "tmp", "123.0.0"), old, old);

    const gc = { ...conf, "cni.dev/valid-attachments": [{ containerID: "live", ifname: "eth0" }] };
    expectSilentSuccess(await runPlugin(gc, { command: "GC", omit: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] }));

    expect(existsSync(stale)).toBe(false);
    expect(readdirSync(join(net, "tmp"))).toEqual([]);
    expect(existsSync(young)).toBe(true); // may be a claim in progress
    expect((await lsJSON(conf)).map((a) => a.containerID)).toEqual(["live"]);
    // The owner whose claim was killed retries its ADD and gets an address as usual.
    expect(expectResult(await runPlugin(conf, { command: "ADD", containerID: "starting" })).ips).toHaveLength(1);
    expect((await lsJSON(conf)).map((a) => a.containerID).sort()).toEqual(["live", "starting"]);
  });

  test("without cni.dev/valid-attachments GC refuses (code 7) and releases nothing", async () => {
    const conf = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0", name: "gc-no-list" });
    expectResult(await runPlugin(conf, { command: "ADD", containerID: "kept" }));
    const r = await runPlugin(conf, { command: "GC" });
    expectCniError(r, 7);
    expect(r.json.msg).toBe("Invalid cni.dev/valid-attachments: GC needs the list of valid attachments (CNI 1.1.0)");
    expect((await lsJSON(conf)).map((a) => a.containerID)).toEqual(["kept"]);
  });

  test("null valid-attachments (libcni's nil slice) means none is valid", async () => {
    const conf = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0" });
    expectResult(await runPlugin(conf, { command: "ADD", containerID: "gone" }));
    expectSilentSuccess(await runPlugin({ ...conf, "cni.dev/valid-attachments": null }, { command: "GC" }));
    expect(await lsJSON(conf)).toEqual([]);
  });

  test("with no valid attachments releases all of this node's allocations in this network only", async () => {
    const net1 = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0", name: "net-one" });
    const net2 = fileNetConf(dir.path, { nodeName: "node-a" }, { cniVersion: "1.1.0", name: "net-two" });
    expectResult(await runPlugin(net1, { command: "ADD" }));
    expectResult(await runPlugin(net2, { command: "ADD" }));
    expectSilentSuccess(await runPlugin({ ...net1, "cni.dev/valid-attachments": [] }, { command: "GC" }));
    expect(await lsJSON(net1)).toEqual([]);
    expect((await lsJSON(net2)).map((a) => a.ip)).toEqual(["10.10.0.2"]);
  });
});

describe("log file", () => {
  test("one JSON line per verb with command, outcome and duration, mode 0600", async () => {
    const logFile = join(dir.path, "logs", "kube-ipam.log");
    const conf = fileNetConf(dir.path, { logFile }, { cniVersion: "1.1.0" });
    expectResult(await runPlugin(conf, { command: "ADD" }));
    expectSilentSuccess(await runPlugin(conf, { command: "CHECK" }));
    expectSilentSuccess(await runPlugin(conf, { command: "STATUS" }));
    expectSilentSuccess(await runPlugin(conf, { command: "DEL" }));
    expectSilentSuccess(await runPlugin({ ...conf, "cni.dev/valid-attachments": [] }, { command: "GC" }));
    expectCniError(await runPlugin(conf, { command: "CHECK" }), 3);

    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    const lines = readFileSync(logFile, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.command, l.level, l.msg])).toEqual([
      ["ADD", "info", "ADD ok"],
      ["CHECK", "info", "CHECK ok"],
      ["STATUS", "info", "STATUS ok"],
      ["DEL", "info", "DEL ok"],
      ["GC", "info", "GC ok"],
      ["CHECK", "error", "CHECK failed"],
    ]);
    for (const l of lines) {
      expect(typeof l.durationMs).toBe("number");
      expect(l.durationMs).toBeGreaterThanOrEqual(0);
      expect(l.network).toBe(l.command === "CHECK" && l.level === "error" ? undefined : "testnet");
    }
    expect(lines[0].ips).toEqual([{ address: "10.10.0.2/24", gateway: "10.10.0.1" }]);
    expect(lines[5].code).toBe(3);
  });

  test("appends to an existing file", async () => {
    const conf = fileNetConf(dir.path);
    const logFile = conf.ipam.logFile;
    writeFileSync(logFile, "", { mode: 0o600 });
    expectResult(await runPlugin(conf, { command: "ADD", containerID: "a" }));
    expectResult(await runPlugin(conf, { command: "ADD", containerID: "b" }));
    const lines = readFileSync(logFile, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.containerID)).toEqual(["a", "b"]);
  });

  test("an unwritable log file sends the line to stderr and the verb still works", async () => {
    const file = join(dir.path, "regular-file");
    writeFileSync(file, "not a directory\n");
    const logFile = join(file, "kube-ipam.log");
    const r = await runPlugin(fileNetConf(dir.path, { logFile }), { command: "ADD" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`${JSON.stringify({ cniVersion: "1.0.0", ips: [{ address: "10.10.0.2/24", gateway: "10.10.0.1" }] })}\n`);
    const stderr = r.stderr.trimEnd().split("\n");
    expect(stderr[0]).toStartWith(`kube-ipam: cannot write log file "${logFile}" (ENOTDIR`);
    const line = JSON.parse(stderr[1]!);
    expect([line.command, line.msg, typeof line.durationMs]).toEqual(["ADD", "ADD ok", "number"]);
  });

  test("an unwritable log file does not change a failing verb's error", async () => {
    const file = join(dir.path, "regular-file");
    writeFileSync(file, "x");
    expectResult(await runPlugin(fileNetConf(dir.path, { subnet: "10.10.0.0/30" }), { command: "ADD", containerID: "a" }));
    const conf = fileNetConf(dir.path, { logFile: join(file, "log"), subnet: "10.10.0.0/30" });
    const r = await runPlugin(conf, { command: "ADD", containerID: "b" });
    expectCniError(r, 100);
    expect(r.stderr).toContain('"msg":"ADD failed"');
  });
});
