// Allocation semantics through the real binary on the embedded store: round-robin, the addresses
// never handed out, exhaustion, idempotent ADD/DEL, requested addresses, range sets and networks.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type CniCall, type CniReply, fileNetConf, listAllocations, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-alloc-");
});
afterEach(() => dir.cleanup());

/** A network on the test's data dir, node "node-1" so that holder messages are predictable. */
function net(ipam: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return fileNetConf(dir.path, { nodeName: "node-1", ...ipam }, top);
}

/** ADD that must succeed; returns the addresses (without prefix length) in result order. */
async function add(conf: unknown, call: Partial<CniCall> = {}): Promise<string[]> {
  const r = await runPlugin(conf, { command: "ADD", ...call });
  if (r.exitCode !== 0) throw new Error(`ADD ${JSON.stringify(call)} failed: ${r.stdout}${r.stderr}`);
  return r.json.ips.map((x: { address: string }) => x.address.split("/")[0]);
}

async function del(conf: unknown, call: Partial<CniCall> = {}): Promise<void> {
  const r = await runPlugin(conf, { command: "DEL", ...call });
  expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 0, stdout: "" });
}

function expectCniError(r: CniReply, code: number, msg: string, details?: string): void {
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  expect(r.json.code).toBe(code);
  expect(r.json.msg).toBe(msg);
  if (details !== undefined) expect(r.json.details).toBe(details);
}

const ls = (conf: unknown) => listAllocations(conf, dir.path);

async function held(conf: unknown): Promise<string[]> {
  return (await ls(conf)).map((a) => `${a.ip} ${a.containerID}/${a.ifName}`);
}

/** ADDs containers c0, c1, ... until the pool is exhausted; returns the addresses and the final error. */
async function fillPool(conf: unknown, max = 64): Promise<{ ips: string[]; error: CniReply }> {
  const ips: string[] = [];
  for (let i = 0; i < max; i++) {
    const r = await runPlugin(conf, { command: "ADD", containerID: `c${i}` });
    if (r.exitCode !== 0) return { ips, error: r };
    ips.push(r.json.ips[0].address.split("/")[0]);
  }
  throw new Error(`pool not exhausted after ${max} ADDs`);
}

describe("round-robin", () => {
  test("a freed address is not reused until the range wraps", async () => {
    const conf = net({ subnet: "10.10.0.0/29" }); // hands out .2-.6
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.2"]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.3"]);
    await del(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "c" })).toEqual(["10.10.0.4"]);
    expect(await add(conf, { containerID: "d" })).toEqual(["10.10.0.5"]);
    expect(await add(conf, { containerID: "e" })).toEqual(["10.10.0.6"]);
    // The end of the range: wrap around to the freed .2.
    expect(await add(conf, { containerID: "f" })).toEqual(["10.10.0.2"]);
    await del(conf, { containerID: "d" });
    expect(await add(conf, { containerID: "g" })).toEqual(["10.10.0.5"]);
  });

  test("a pod with runtimeConfig.ipRanges does not disturb the configured set's round-robin", async () => {
    const conf = net({ subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.20" });
    expect(await add(conf, { containerID: "c1" })).toEqual(["10.10.0.10"]);
    expect(await add(conf, { containerID: "c2" })).toEqual(["10.10.0.11"]);
    await del(conf, { containerID: "c1" });
    const withRanges = { ...conf, runtimeConfig: { ipRanges: [[{ subnet: "10.10.5.0/24" }]] } };
    expect(await add(withRanges, { containerID: "c3" })).toEqual(["10.10.5.2", "10.10.0.12"]);
    // The configured set's cursor is still its own: .13 next, not the just-freed .10.
    expect(await add(conf, { containerID: "c4" })).toEqual(["10.10.0.13"]);
  });

  test("a damaged cursor file is only a lost hint: the next ADD starts over and mends it", async () => {
    const conf = net({ subnet: "10.10.0.0/29" });
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.2"]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.3"]);
    const cursors = join(dir.path, "data", "testnet", "cursors");
    const [file] = readdirSync(cursors);
    writeFileSync(join(cursors, file!), "0a0a0003zz"); // garbled, longer than a cursor
    await del(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "c" })).toEqual(["10.10.0.2"]);
    expect(readFileSync(join(cursors, file!), "utf8")).toBe("0a0a0002");
    expect(await add(conf, { containerID: "d" })).toEqual(["10.10.0.4"]);
  });

  test("the cursor is per range set", async () => {
    const conf = net({ subnet: undefined, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00::/120" }]] });
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.2", "fd00::2"]);
    await del(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.3", "fd00::3"]);
  });
});

describe("addresses never handed out", () => {
  test("IPv4: network, gateway and broadcast, with the gateway inside the range", async () => {
    const conf = net({ subnet: "10.10.0.0/29", gateway: "10.10.0.4" });
    const { ips, error } = await fillPool(conf);
    expect(ips).toEqual(["10.10.0.1", "10.10.0.2", "10.10.0.3", "10.10.0.5", "10.10.0.6"]);
    expect(error.json.code).toBe(100);
  });

  test("IPv6: network and gateway (there is no broadcast)", async () => {
    const conf = net({ subnet: "fd00:1::/126" });
    const { ips, error } = await fillPool(conf);
    expect(ips).toEqual(["fd00:1::2", "fd00:1::3"]);
    expect(error.json.code).toBe(100);
  });

  test("exclude: an address, an A-B range and a CIDR, on a pool filled to exhaustion", async () => {
    const conf = net({ subnet: "10.10.0.0/28", exclude: ["10.10.0.5", "10.10.0.8-10.10.0.9", "10.10.0.12/30"] });
    const { ips, error } = await fillPool(conf);
    expect(ips).toEqual(["10.10.0.2", "10.10.0.3", "10.10.0.4", "10.10.0.6", "10.10.0.7", "10.10.0.10", "10.10.0.11"]);
    expectCniError(error, 100,
      'No free address in network "testnet" range set 10.10.0.0/28 (10.10.0.1-10.10.0.14): release unused addresses (kube-ipam ls) or add a range',
      "testnet");
  });

  test("an excluded address cannot be requested either", async () => {
    const conf = net({ exclude: ["10.10.0.8-10.10.0.9"] });
    const r = await runPlugin(conf, { command: "ADD", args: "IP=10.10.0.9" });
    expectCniError(r, 103,
      'Cannot allocate address "10.10.0.9" in network "testnet": it is excluded by ipam.exclude "10.10.0.8-10.10.0.9"', "10.10.0.9");
  });

  test("even when the range is configured to cover the whole subnet", async () => {
    const conf = net({ subnet: "10.10.0.0/29", rangeStart: "10.10.0.0", rangeEnd: "10.10.0.7" });
    const { ips, error } = await fillPool(conf);
    expect(ips).toEqual(["10.10.0.2", "10.10.0.3", "10.10.0.4", "10.10.0.5", "10.10.0.6"]);
    expect(error.json.code).toBe(100);
  });

  test.each([["10.10.0.0"], ["10.10.0.1"], ["10.10.0.255"]])("requesting %s is refused", async (ip) => {
    const r = await runPlugin(net({ rangeStart: "10.10.0.0", rangeEnd: "10.10.0.255" }), { command: "ADD", args: `IP=${ip}` });
    expectCniError(r, 103,
      `Cannot allocate address "${ip}" in network "testnet": it is the gateway, network or broadcast address of its subnet`, ip);
  });
});

describe("pool exhausted", () => {
  test("is code 100 naming the network, and DEL makes room again", async () => {
    const conf = net({ subnet: "10.10.0.0/29", rangeStart: "10.10.0.5" }, { name: "small-net" });
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.5"]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.6"]);
    const r = await runPlugin(conf, { command: "ADD", containerID: "c" });
    expectCniError(r, 100,
      'No free address in network "small-net" range set 10.10.0.0/29 (10.10.0.5-10.10.0.6): release unused addresses (kube-ipam ls) or add a range',
      "small-net");
    expect(await held(conf)).toEqual(["10.10.0.5 a/eth0", "10.10.0.6 b/eth0"]);
    await del(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "c" })).toEqual(["10.10.0.5"]);
  });

  test("a dual-stack ADD whose second set is exhausted keeps nothing from the first", async () => {
    const conf = net({ subnet: undefined, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00::/126" }]] });
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.2", "fd00::2"]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.3", "fd00::3"]);
    const r = await runPlugin(conf, { command: "ADD", containerID: "c" });
    expect(r.json.code).toBe(100);
    expect(await held(conf)).toEqual(["10.10.0.2 a/eth0", "10.10.0.3 b/eth0", "fd00::2 a/eth0", "fd00::3 b/eth0"]);
  });
});

describe("allocation keys", () => {
  test("a repeated ADD for the same container and interface returns the same addresses", async () => {
    const conf = net({ subnet: undefined, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00::/120" }]] });
    const first = await add(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "a" })).toEqual(first);
    expect(await add(conf, { containerID: "a" })).toEqual(first);
    expect(await held(conf)).toEqual(["10.10.0.2 a/eth0", "fd00::2 a/eth0"]);
    // And the cursor did not move for the repeats.
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.3", "fd00::3"]);
  });

  test("a different interface of the same container is a different allocation", async () => {
    const conf = net();
    expect(await add(conf, { containerID: "a", ifName: "eth0" })).toEqual(["10.10.0.2"]);
    expect(await add(conf, { containerID: "a", ifName: "net1" })).toEqual(["10.10.0.3"]);
    expect(await held(conf)).toEqual(["10.10.0.2 a/eth0", "10.10.0.3 a/net1"]);
  });

  test("DEL releases only that key, and a second DEL succeeds", async () => {
    const conf = net();
    await add(conf, { containerID: "a", ifName: "eth0" });
    await add(conf, { containerID: "a", ifName: "net1" });
    await add(conf, { containerID: "b", ifName: "eth0" });
    await del(conf, { containerID: "a", ifName: "eth0" });
    expect(await held(conf)).toEqual(["10.10.0.3 a/net1", "10.10.0.4 b/eth0"]);
    await del(conf, { containerID: "a", ifName: "eth0" });
    expect(await held(conf)).toEqual(["10.10.0.3 a/net1", "10.10.0.4 b/eth0"]);
  });

  test("two range sets sharing a subnet: a repeated ADD returns the same two addresses", async () => {
    const conf = net({
      subnet: undefined,
      ranges: [
        [{ subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.19" }],
        [{ subnet: "10.10.0.0/24", rangeStart: "10.10.0.100", rangeEnd: "10.10.0.109" }],
      ],
    });
    const first = await add(conf);
    expect(first).toEqual(["10.10.0.10", "10.10.0.100"]);
    expect(await add(conf)).toEqual(first);
  });

  test("DEL ignores CNI_ARGS it does not use, even without IgnoreUnknown", async () => {
    const conf = net();
    await add(conf, { args: "K8S_POD_NAME=p" });
    await del(conf, { args: "K8S_POD_NAME=p;SOMETHING_NEW=1" });
    expect(await ls(conf)).toEqual([]);
  });

  test("DEL of a container that never had an address succeeds", async () => {
    await del(net(), { containerID: "never-added" });
  });
});

describe("requested addresses", () => {
  const DUAL = { subnet: undefined, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00::/120" }]] };

  test.each([
    ["CNI_ARGS IP=", {}, "IgnoreUnknown=1;IP=10.10.0.9"],
    ["args.cni.ips", { args: { cni: { ips: ["10.10.0.9"] } } }, undefined],
    ["runtimeConfig.ips", { runtimeConfig: { ips: ["10.10.0.9/24"] } }, undefined],
  ])("via %s", async (_how, top, args) => {
    const conf = net({}, top);
    expect(await add(conf, { containerID: "a", ...(args ? { args } : {}) })).toEqual(["10.10.0.9"]);
    const [record] = await ls(conf);
    expect([record.ip, record.kind]).toEqual(["10.10.0.9", "requested"]);
    // Requested addresses do not move the round-robin cursor.
    expect(await add(net(), { containerID: "b" })).toEqual(["10.10.0.2"]);
  });

  test("one address per family in a dual-stack network, from different sources", async () => {
    const conf = net(DUAL, { runtimeConfig: { ips: ["fd00::20/120"] } });
    expect(await add(conf, { containerID: "a", args: "IP=10.10.0.20" })).toEqual(["10.10.0.20", "fd00::20"]);
  });

  test("a repeated ADD with the same request returns the same address", async () => {
    const conf = net();
    expect(await add(conf, { containerID: "a", args: "IP=10.10.0.9" })).toEqual(["10.10.0.9"]);
    expect(await add(conf, { containerID: "a", args: "IP=10.10.0.9" })).toEqual(["10.10.0.9"]);
  });

  test("an address held by another container is code 101 naming the holder", async () => {
    const conf = net();
    await add(conf, { containerID: "holder", args: "K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;IP=10.10.0.9" });
    const [rec] = await ls(conf);
    const r = await runPlugin(conf, { command: "ADD", containerID: "other", args: "IP=10.10.0.9" });
    expectCniError(r, 101,
      `Address "10.10.0.9" in network "testnet" is held by pod "prod/web-0", container "holder" interface "eth0" on node "node-1" (requested, since ${rec.allocatedAt})`,
      "10.10.0.9");
    expect(await held(conf)).toEqual(["10.10.0.9 holder/eth0"]);
  });

  test("an address handed out dynamically cannot be requested by another container", async () => {
    const conf = net();
    await add(conf, { containerID: "holder" });
    const r = await runPlugin({ ...conf, args: { cni: { ips: ["10.10.0.2"] } } }, { command: "ADD", containerID: "other" });
    expect(r.json.code).toBe(101);
    expect(r.json.msg).toStartWith('Address "10.10.0.2" in network "testnet" is held by no pod recorded, container "holder" interface "eth0" on node "node-1" (dynamic, since ');
  });

  test.each([
    ["in another subnet", "10.99.0.9"],
    ["in the subnet but outside rangeStart-rangeEnd", "10.10.0.200"],
    ["of a family the network does not have", "fd00::9"],
  ])("an address %s is code 103", async (_what, ip) => {
    const conf = net({ rangeEnd: "10.10.0.100" });
    const r = await runPlugin(conf, { command: "ADD", args: `IP=${ip}` });
    expectCniError(r, 103, `Cannot allocate address "${ip}" in network "testnet": it is in no range of this network`, ip);
    expect(await ls(conf)).toEqual([]);
  });

  test("two addresses for one range set are refused", async () => {
    const r = await runPlugin(net(), { command: "ADD", args: "IP=10.10.0.5,10.10.0.6" });
    expectCniError(r, 103,
      'Cannot allocate address "10.10.0.6" in network "testnet": "10.10.0.5" was requested from the same range set 0; one address per range set');
  });

  test("nothing stays reserved when the second range set fails", async () => {
    const conf = net(DUAL);
    expect(await add(conf, { containerID: "holder", args: "IP=10.10.0.50,fd00::50" })).toEqual(["10.10.0.50", "fd00::50"]);
    // v4 is allocated dynamically first, then the v6 request collides: the v4 claim must be rolled back.
    const r = await runPlugin(conf, { command: "ADD", containerID: "loser", args: "IP=fd00::50" });
    expect(r.json.code).toBe(101);
    expect(await held(conf)).toEqual(["10.10.0.50 holder/eth0", "fd00::50 holder/eth0"]);
    // The loser can try again without the request and gets a full dual-stack allocation.
    expect((await add(conf, { containerID: "loser" })).length).toBe(2);
  });

  test("a held requested address moves to the new container after DEL", async () => {
    const conf = net();
    await add(conf, { containerID: "old", args: "IP=10.10.0.9" });
    await del(conf, { containerID: "old" });
    expect(await add(conf, { containerID: "new", args: "IP=10.10.0.9" })).toEqual(["10.10.0.9"]);
  });
});

describe("a dense pool on the embedded store", () => {
  test("a run of a thousand held addresses is crossed to the one free address after it", async () => {
    const conf = net({ subnet: "10.10.0.0/22" }); // .0.1 is the gateway: .0.2 to .3.254 are handed out
    const ips = join(dir.path, "data", "testnet", "ips");
    mkdirSync(ips, { recursive: true });
    const gap = 0x0a0a0000 + 2 * 256 + 77; // 10.10.2.77
    for (let v = 0x0a0a0002; v <= 0x0a0a03fe; v++) {
      if (v !== gap) writeFileSync(join(ips, v.toString(16).padStart(8, "0")), "{}");
    }
    writeFileSync(join(ips, "fd000000000000000000000000000001"), "{}"); // another family's claim counts for nothing here
    expect(await add(conf, { containerID: "late" })).toEqual(["10.10.2.77"]);
    const full = await runPlugin(conf, { command: "ADD", containerID: "later" });
    expect(full.json.code).toBe(100);
  });
});

describe("overlapping attempts of one owner on the embedded store", () => {
  /** A /28 network, with its owners/ directory ready for entries made by hand. */
  function withOwnersDir() {
    const owners = join(dir.path, "data", "testnet", "owners");
    mkdirSync(owners, { recursive: true });
    return { conf: net({ subnet: "10.10.0.0/28" }), owners };
  }

  test("an ADD never replaces the young owner entry of another attempt of the same container", async () => {
    const { conf, owners } = withOwnersDir();
    // An attempt of container "x" under way (or killed a moment ago): its entry for .2, not yet linked.
    const live = join(owners, "x:eth0:0a0a0002");
    writeFileSync(live, '{"ip":"10.10.');
    const [ip] = await add(conf, { containerID: "x" });
    expect(ip).not.toBe("10.10.0.2");
    expect(readFileSync(live, "utf8")).toBe('{"ip":"10.10.');
    expect(await held(conf)).toEqual([`${ip} x/eth0`]);
  });

  test("an owner entry old enough to be debris is replaced by its owner's next ADD", async () => {
    const { conf, owners } = withOwnersDir();
    const stale = join(owners, "y:eth0:0a0a0002");
    writeFileSync(stale, "");
    const old = new Date(Date.now() - 120_000);
    utimesSync(stale, old, old);
    expect(await add(conf, { containerID: "y" })).toEqual(["10.10.0.2"]);
    expect(await held(conf)).toEqual(["10.10.0.2 y/eth0"]);
  });
});

describe("range sets", () => {
  test("runtimeConfig.ipRanges alone", async () => {
    const conf = net({ subnet: undefined }, {
      runtimeConfig: { ipRanges: [[{ subnet: "10.30.0.0/24", rangeStart: "10.30.0.100", rangeEnd: "10.30.0.101", gateway: "10.30.0.254" }]] },
    });
    const r = await runPlugin(conf, { command: "ADD" });
    expect(r.json.ips).toEqual([{ address: "10.30.0.100/24", gateway: "10.30.0.254" }]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.30.0.101"]);
    expect((await runPlugin(conf, { command: "ADD", containerID: "c" })).json.code).toBe(100);
  });

  test("runtimeConfig.ipRanges come before the configured ranges", async () => {
    const conf = net({ subnet: undefined, ranges: [[{ subnet: "fd00::/120" }]] }, {
      runtimeConfig: { ipRanges: [[{ subnet: "10.30.0.0/24" }]] },
    });
    expect(await add(conf)).toEqual(["10.30.0.2", "fd00::2"]);
  });

  test("within one set, a full range spills into the next", async () => {
    const conf = net({
      subnet: undefined,
      ranges: [[
        { subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.11" },
        { subnet: "10.20.0.0/16", rangeStart: "10.20.5.10", rangeEnd: "10.20.5.10" },
      ]],
    });
    expect(await add(conf, { containerID: "a" })).toEqual(["10.10.0.10"]);
    expect(await add(conf, { containerID: "b" })).toEqual(["10.10.0.11"]);
    const c = await runPlugin(conf, { command: "ADD", containerID: "c" });
    expect(c.json.ips).toEqual([{ address: "10.20.5.10/16", gateway: "10.20.0.1" }]);
    const d = await runPlugin(conf, { command: "ADD", containerID: "d" });
    expectCniError(d, 100,
      'No free address in network "testnet" range set 10.10.0.0/24 (10.10.0.10-10.10.0.11), 10.20.0.0/16 (10.20.5.10-10.20.5.10): release unused addresses (kube-ipam ls) or add a range');
    // After a DEL in the first range, round-robin wraps back to it.
    await del(conf, { containerID: "a" });
    expect(await add(conf, { containerID: "e" })).toEqual(["10.10.0.10"]);
  });
});

describe("damaged state", () => {
  test("a damaged reservation fails ADD with code 5 naming the file, STATUS with 50, and nothing is allocated", async () => {
    const conf = net({}, { cniVersion: "1.1.0" });
    const file = join(dir.path, "data", "_reserved", "broken.json");
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "{not json");
    const r = await runPlugin(conf, { command: "ADD" });
    expectCniError(r, 5, `Cannot read the reservation in file "${file}": it is damaged; recreate it with "kube-ipam reserve" or remove it`);
    expect(await ls(conf)).toEqual([]);
    const st = await runPlugin(conf, { command: "STATUS" });
    expect(st.json.code).toBe(50);
  });
});

describe("networks", () => {
  test("two networks sharing one dataDir are independent pools", async () => {
    const red = net({ subnet: "10.10.0.0/30" }, { name: "red" });
    const blue = net({ subnet: "10.10.0.0/30" }, { name: "blue" });
    expect(await add(red, { containerID: "a" })).toEqual(["10.10.0.2"]);
    expect(await add(blue, { containerID: "a" })).toEqual(["10.10.0.2"]);
    expect((await runPlugin(red, { command: "ADD", containerID: "b" })).json.code).toBe(100);
    await del(red, { containerID: "a" });
    expect(await ls(red)).toEqual([]);
    expect((await ls(blue)).map((x) => [x.ip, x.network, x.containerID])).toEqual([["10.10.0.2", "blue", "a"]]);
    expect((await runPlugin(blue, { command: "ADD", containerID: "b" })).json.code).toBe(100);
  });
});
