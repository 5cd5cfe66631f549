// Operating the pool from the command line: show, usage and release, with the real binary, on the
// embedded store and on a real etcd (with a real kube-apiserver for sticky addresses). Every test
// has its own data directory or etcd key prefix.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EtcdServer, startEtcd } from "../support/etcd.ts";
import { type KubeApiServer, makePod, makeStatefulSet, startKubeApiServer } from "../support/kube_apiserver.ts";
import { type CniReply, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

const USAGE_HINT = 'Run "kube-ipam help" for usage.\n';
const NETWORK = "opsnet";

let etcd: EtcdServer;
let api: KubeApiServer;
let kubeconfig: string;
let shared: ReturnType<typeof tempDir>;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  shared = tempDir("kube-ipam-ops-");
  [etcd, api] = await Promise.all([startEtcd(), startKubeApiServer()]);
  kubeconfig = api.writeKubeconfig(join(shared.path, "kube"), "token");
}, 90_000);
afterAll(async () => {
  await api?.stop();
  await etcd.stop();
  shared.cleanup();
});
beforeEach(() => {
  dir = tempDir("kube-ipam-ops-");
});
afterEach(() => dir.cleanup());

interface Conf {
  cniVersion: string;
  name: string;
  type: string;
  ipam: Record<string, unknown>;
}

/** A store to run the same commands on, and a way to see every byte of its state. */
interface StoreKind {
  readonly name: string;
  conf(ipam: Record<string, unknown>): Conf;
  /** Everything the store holds for `conf` (and, for etcd, the cluster revision: any write moves it). */
  snapshot(conf: Conf): Promise<unknown>;
}

function readTree(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(path)) {
    const p = join(path, name);
    if (statSync(p).isDirectory()) {
      for (const [k, v] of Object.entries(readTree(p))) out[`${name}/${k}`] = v;
    } else {
      out[name] = readFileSync(p, "utf8");
    }
  }
  return out;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString();

/** Every key and value under `prefix`, read through etcd's JSON gateway. */
async function etcdKeys(prefix: string): Promise<{ revision: string; kvs: Record<string, string> }> {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const res = await fetch(`${etcd.endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }),
  });
  const body = (await res.json()) as { header: { revision: string }; kvs?: { key: string; value: string }[] };
  return { revision: body.header.revision, kvs: Object.fromEntries((body.kvs ?? []).map((kv) => [unb64(kv.key), unb64(kv.value)])) };
}

let prefixes = 0;
const STORES: StoreKind[] = [
  {
    name: "embedded store",
    conf: (ipam) => fileNetConf(dir.path, { nodeName: "node-7", ...ipam }, { name: NETWORK }),
    snapshot: (conf) => Promise.resolve(readTree(conf.ipam.dataDir as string)),
  },
  {
    name: "etcd",
    conf: (ipam) => {
      const { dataDir: _, ...base } = fileNetConf(dir.path, { nodeName: "node-7", ...ipam }, { name: NETWORK }).ipam;
      const etcdConfig = { etcdURL: etcd.endpoint, etcdPrefix: `/ops-${process.pid}-${prefixes++}` };
      return { cniVersion: "1.0.0", name: NETWORK, type: "bridge", ipam: { ...base, etcdConfig } };
    },
    snapshot: (conf) => etcdKeys(`${(conf.ipam.etcdConfig as { etcdPrefix: string }).etcdPrefix}/`),
  },
];

function writeConf(conf: unknown): string {
  const file = join(dir.path, `${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, JSON.stringify(conf));
  return file;
}

function ok(r: CniReply): CniReply {
  if (r.exitCode !== 0 || r.stderr !== "") throw new Error(`exit ${r.exitCode}: ${r.stderr}${r.stdout}`);
  return r;
}

/** ADD; returns the first address handed out. */
async function add(conf: unknown, containerID: string, args: string, ifName = "eth0"): Promise<string> {
  const r = await runPlugin(conf, { command: "ADD", containerID, ifName, args });
  if (r.exitCode !== 0) throw new Error(`ADD ${containerID} failed: ${r.stdout}${r.stderr}`);
  return r.json.ips[0].address.split("/")[0];
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The pool of most tests: 10.10.0.10-10.10.0.29 (20), 2 excluded; three holders; "keep" reserves .12-.14. */
const POOL = { subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.29", exclude: ["10.10.0.20-10.10.0.21"] };

async function populate(conf: Conf): Promise<string> {
  await add(conf, "0123456789abcdef0123", "K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;IP=10.10.0.12");
  await add(conf, "second", "K8S_POD_NAMESPACE=dev;K8S_POD_NAME=api-1;IP=10.10.0.10", "net1");
  await add(conf, "third", "IP=10.10.0.25");
  const file = writeConf(conf);
  ok(await runCli(["reserve", "keep", "10.10.0.12-10.10.0.14", "--conf", file]));
  return file;
}

describe.each(STORES.map((s) => [s.name, s] as const))("%s", (_name, store) => {
  describe("show", () => {
    test("-o json: the holder (the fields of ls, plus parkedAt) and the reservation that lists the address", async () => {
      const file = await populate(store.conf(POOL));
      const before = Date.now();
      const r = ok(await runCli(["show", "10.10.0.12", "--conf", file, "-o", "json"]));
      const { allocatedAt, ...held } = r.json.held;
      expect({ ...r.json, held }).toEqual({
        ip: "10.10.0.12",
        network: NETWORK,
        held: {
          ip: "10.10.0.12", network: NETWORK, containerID: "0123456789abcdef0123", ifName: "eth0", podNamespace: "prod",
          podName: "web-0", node: "node-7", kind: "requested", parkedAt: null,
        },
        reservedBy: "keep",
        inRange: true,
        excluded: false,
        infrastructure: false,
      });
      expect(allocatedAt).toMatch(ISO);
      expect(Date.parse(allocatedAt)).toBeLessThanOrEqual(before);
      // The same record ls shows.
      const ls = ok(await runCli(["ls", "--conf", file, "-o", "json"])).json.find((a: { ip: string }) => a.ip === "10.10.0.12");
      expect({ ...ls, parkedAt: null }).toEqual(r.json.held);
    });

    const addresses: [string, string, Record<string, unknown>][] = [
      ["free, in the range", "10.10.0.11", { reservedBy: null, inRange: true, excluded: false, infrastructure: false }],
      ["reserved, not held", "10.10.0.13", { reservedBy: "keep", inRange: true, excluded: false, infrastructure: false }],
      ["excluded", "10.10.0.21", { reservedBy: null, inRange: true, excluded: true, infrastructure: false }],
      ["the gateway, outside the range", "10.10.0.1", { reservedBy: null, inRange: false, excluded: false, infrastructure: true }],
      ["the broadcast address", "10.10.0.255", { reservedBy: null, inRange: false, excluded: false, infrastructure: true }],
      ["the network address", "10.10.0.0", { reservedBy: null, inRange: false, excluded: false, infrastructure: true }],
      ["in the subnet, outside the range", "10.10.0.5", { reservedBy: null, inRange: false, excluded: false, infrastructure: false }],
      ["in no subnet of the network", "192.168.1.1", { reservedBy: null, inRange: false, excluded: false, infrastructure: false }],
      ["an IPv6 address in an IPv4 network, canonicalised", "fd00:0:0::0005", { ip: "fd00::5", reservedBy: null, inRange: false, excluded: false, infrastructure: false }],
    ];
    test("-o json of addresses nobody holds", async () => {
      const file = await populate(store.conf(POOL));
      for (const [what, addr, expected] of addresses) {
        const r = ok(await runCli(["show", addr, "--conf", file, "-o", "json"]));
        expect({ what, ...r.json }).toEqual({ what, ip: addr, network: NETWORK, held: null, ...expected });
      }
    });

    test("table: one line per fact, the holder's details and age", async () => {
      const file = await populate(store.conf(POOL));
      const r = ok(await runCli(["show", "10.10.0.10", "--conf", file]));
      const lines = r.stdout.trimEnd().split("\n");
      expect(lines.filter((l) => !l.startsWith("Allocated:"))).toEqual([
        "Address:         10.10.0.10",
        "Network:         opsnet",
        "Status:          held by pod dev/api-1, live",
        "Pod:             dev/api-1",
        "Container:       second",
        "Interface:       net1",
        "Node:            node-7",
        "Kind:            requested",
        "Reserved by:     -",
        "In range:        yes: 10.10.0.10-10.10.0.29 (range set 0)",
        "Excluded:        no",
        "Infrastructure:  no",
      ]);
      expect(lines[8]).toMatch(/^Allocated: {7}\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/);
    });

    const tables: [string, string, string[]][] = [
      ["a holder without a pod", "10.10.0.25", ["Status:          held by container third, live", "Pod:             -", "Container:       third"]],
      ["reserved", "10.10.0.14", ['Status:          not held; reserved by "keep", so not handed out', "Reserved by:     keep"]],
      ["excluded", "10.10.0.20", [
        'Status:          not held; not handed out dynamically: it is excluded by ipam.exclude "10.10.0.20-10.10.0.21"',
        'Excluded:        yes: ipam.exclude "10.10.0.20-10.10.0.21"',
      ]],
      ["the gateway", "10.10.0.1", [
        "Status:          not held; not handed out dynamically: it is the gateway of 10.10.0.0/24",
        "In range:        no: outside every range of the network",
        "Infrastructure:  yes: the gateway of 10.10.0.0/24",
      ]],
      ["the broadcast address", "10.10.0.255", ["Infrastructure:  yes: the broadcast address of 10.10.0.0/24"]],
      ["free", "10.10.0.29", ["Status:          free", "In range:        yes: 10.10.0.10-10.10.0.29 (range set 0)"]],
    ];
    test("table lines for each kind of address", async () => {
      const file = await populate(store.conf(POOL));
      for (const [what, addr, expected] of tables) {
        const r = ok(await runCli(["show", addr, "--conf", file]));
        const lines = r.stdout.split("\n");
        for (const line of expected) expect({ what, line: lines.includes(line) ? line : r.stdout }).toEqual({ what, line });
      }
    });

    const usageErrors: [string[], string][] = [
      [["show", "10.10.0.300"], '"10.10.0.300" is not an IPv4 or IPv6 address'],
      [["show", "10.10.0.12/24"], '"10.10.0.12/24" is not an IPv4 or IPv6 address'],
      [["show"], "Usage: kube-ipam show ADDR --conf FILE [-o table|json]"],
      [["show", "10.10.0.12", "10.10.0.13"], "Usage: kube-ipam show ADDR --conf FILE [-o table|json]"],
      [["show", "10.10.0.12", "-o", "yaml"], 'Output format "yaml" is not "table" or "json"'],
    ];
    test("malformed or missing ADDR and bad flags: usage errors, exit 2", async () => {
      const file = writeConf(store.conf(POOL));
      for (const [args, message] of usageErrors) {
        const r = await runCli([...args, "--conf", file]);
        expect({ args, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })
          .toEqual({ args, exitCode: 2, stdout: "", stderr: `kube-ipam: ${message}\n${USAGE_HINT}` });
      }
    });
  });

  describe("usage", () => {
    test("-o json and the table: size without excluded addresses, held, reserved-but-free, free", async () => {
      const file = await populate(store.conf(POOL));
      const json = ok(await runCli(["usage", "--conf", file, "-o", "json"]));
      expect(json.json).toEqual([
        { network: NETWORK, rangeSet: 0, subnet: "10.10.0.0/24", range: "10.10.0.10-10.10.0.29", size: 18, used: 3, reserved: 2, free: 13 },
      ]);
      const table = ok(await runCli(["usage", "--conf", file]));
      expect(table.stdout).toBe([
        "NETWORK  SET  SUBNET        RANGE                  SIZE  USED  RESERVED  FREE  USAGE",
        "opsnet   0    10.10.0.0/24  10.10.0.10-10.10.0.29    18     3         2    13  [##r.......] 17%",
        "USAGE: # held, r reserved, . free; the percentage is held / size",
        "",
      ].join("\n"));
    });

    test("dual stack over two range sets: one row per range, an IPv6 /64 counted exactly (strings past 2^53)", async () => {
      const conf = store.conf({
        subnet: undefined, rangeStart: undefined, rangeEnd: undefined,
        ranges: [
          [{ subnet: "10.20.0.0/24", rangeStart: "10.20.0.10", rangeEnd: "10.20.0.19" }, { subnet: "10.20.1.0/30" }],
          [{ subnet: "fd00:20::/64" }],
        ],
      });
      await add(conf, "dual", "IP=10.20.1.2,fd00:20::5");
      const file = writeConf(conf);
      ok(await runCli(["reserve", "v6", "fd00:20::/120", "--conf", file]));
      expect(ok(await runCli(["usage", "--conf", file, "-o", "json"])).json).toEqual([
        { network: NETWORK, rangeSet: 0, subnet: "10.20.0.0/24", range: "10.20.0.10-10.20.0.19", size: 10, used: 0, reserved: 0, free: 10 },
        { network: NETWORK, rangeSet: 0, subnet: "10.20.1.0/30", range: "10.20.1.1-10.20.1.2", size: 1, used: 1, reserved: 0, free: 0 },
        {
          network: NETWORK, rangeSet: 1, subnet: "fd00:20::/64", range: "fd00:20::1-fd00:20::ffff:ffff:ffff:ffff",
          size: "18446744073709551614", used: 1, reserved: 253, free: "18446744073709551360",
        },
      ]);
      const lines = ok(await runCli(["usage", "--conf", file])).stdout.trimEnd().split("\n");
      expect(lines.map((l) => l.trim().split(/ {2,}/))).toEqual([
        ["NETWORK", "SET", "SUBNET", "RANGE", "SIZE", "USED", "RESERVED", "FREE", "USAGE"],
        ["opsnet", "0", "10.20.0.0/24", "10.20.0.10-10.20.0.19", "10", "0", "0", "10", "[..........] 0%"],
        ["opsnet", "0", "10.20.1.0/30", "10.20.1.1-10.20.1.2", "1", "1", "0", "0", "[##########] 100%"],
        ["opsnet", "1", "fd00:20::/64", "fd00:20::1-fd00:20::ffff:ffff:ffff:ffff", "18446744073709551614", "1", "253",
          "18446744073709551360", "[#r........] <1%"],
        ["USAGE: # held, r reserved, . free; the percentage is held / size"],
      ]);
      // Counts are right-aligned under their headers.
      for (const header of ["SIZE", "USED", "RESERVED", "FREE"]) {
        const end = lines[0]!.indexOf(header) + header.length;
        for (const line of lines.slice(1, 4)) expect(line.slice(end - 1, end + 1)).toMatch(/^\d $/);
      }
    });

    test("an empty pool, and extra arguments are a usage error", async () => {
      const file = writeConf(store.conf(POOL));
      expect(ok(await runCli(["usage", "--conf", file, "-o", "json"])).json).toEqual([
        { network: NETWORK, rangeSet: 0, subnet: "10.10.0.0/24", range: "10.10.0.10-10.10.0.29", size: 18, used: 0, reserved: 0, free: 18 },
      ]);
      const r = await runCli(["usage", "extra", "--conf", file]);
      expect(r).toMatchObject({ exitCode: 2, stdout: "", stderr: `kube-ipam: Usage: kube-ipam usage --conf FILE [-o table|json]\n${USAGE_HINT}` });
    });
  });

  describe("release", () => {
    const HOLDER = "pod dev/api-1 (container second, interface net1, node node-7, kind requested)";

    test("without --yes: exit 2, names the holder and --yes, and changes nothing", async () => {
      const conf = store.conf(POOL);
      const file = await populate(conf);
      const before = await store.snapshot(conf);
      const r = await runCli(["release", "10.10.0.10", "--conf", file]);
      expect(r).toMatchObject({
        exitCode: 2,
        stdout: "",
        stderr: `kube-ipam: 10.10.0.10 is held by ${HOLDER}. Releasing it takes it from its holder while the pod may ` +
          `still use it: add --yes to release it\n${USAGE_HINT}`,
      });
      expect(await store.snapshot(conf)).toEqual(before);
      expect(ok(await runCli(["show", "10.10.0.10", "--conf", file, "-o", "json"])).json.held.containerID).toBe("second");
    });

    test("--yes: releases exactly that address; DEL of its container then finds nothing; the address can be handed out again", async () => {
      const conf = store.conf(POOL);
      const file = await populate(conf);
      const r = ok(await runCli(["release", "10.10.0.10", "--conf", file, "--yes"]));
      expect(r.stdout).toBe(`Released 10.10.0.10 in network "opsnet" from ${HOLDER}\n`);
      const ls = ok(await runCli(["ls", "--conf", file, "-o", "json"])).json;
      expect(ls.map((a: { ip: string; containerID: string }) => [a.ip, a.containerID]))
        .toEqual([["10.10.0.12", "0123456789abcdef0123"], ["10.10.0.25", "third"]]);
      expect(ok(await runCli(["show", "10.10.0.10", "--conf", file, "-o", "json"])).json.held).toBeNull();
      expect(ok(await runCli(["usage", "--conf", file, "-o", "json"])).json[0]).toMatchObject({ used: 2, reserved: 2, free: 14 });

      expect((await runPlugin(conf, { command: "DEL", containerID: "second", ifName: "net1" })).exitCode).toBe(0);
      expect(ok(await runCli(["ls", "--conf", file, "-o", "json"])).json).toEqual(ls);
      await add(conf, "newcomer", "IP=10.10.0.10");
      expect(ok(await runCli(["show", "10.10.0.10", "--conf", file, "-o", "json"])).json.held.containerID).toBe("newcomer");
    });

    test("an address nobody holds: exit 1 with or without --yes, nothing changes", async () => {
      const conf = store.conf(POOL);
      const file = await populate(conf);
      const before = await store.snapshot(conf);
      for (const [addr, extra] of [["10.10.0.11", ["--yes"]], ["10.10.0.13", []], ["fd00::1", ["--yes"]]] as const) {
        const r = await runCli(["release", addr, "--conf", file, ...extra]);
        expect(r).toMatchObject({
          exitCode: 1,
          stdout: "",
          stderr: `kube-ipam: ${addr} is not held in network "opsnet": nothing to release\n`,
        });
      }
      expect(await store.snapshot(conf)).toEqual(before);
    });

    const usageErrors: [string[], string][] = [
      [["release", "10.10.0.x", "--yes"], '"10.10.0.x" is not an IPv4 or IPv6 address'],
      [["release", "--yes"], "Usage: kube-ipam release ADDR --conf FILE --yes"],
      [["release", "10.10.0.10", "10.10.0.12", "--yes"], "Usage: kube-ipam release ADDR --conf FILE --yes"],
      [["release", "10.10.0.10", "--force"], 'Unknown flag "--force"'],
    ];
    test("malformed ADDR and bad arguments: usage errors, exit 2, nothing changes", async () => {
      const conf = store.conf(POOL);
      const file = await populate(conf);
      const before = await store.snapshot(conf);
      for (const [args, message] of usageErrors) {
        const r = await runCli([...args, "--conf", file]);
        expect({ args, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })
          .toEqual({ args, exitCode: 2, stdout: "", stderr: `kube-ipam: ${message}\n${USAGE_HINT}` });
      }
      expect(await store.snapshot(conf)).toEqual(before);
    });
  });
});

describe("etcd with the Kubernetes API: a parked sticky address", () => {
  test("show says parked and since when, usage counts it, release without --yes writes nothing, --yes removes record and indexes", async () => {
    const conf = STORES[1]!.conf({ ...POOL, kubeConfig: kubeconfig });
    const prefix = `${(conf.ipam.etcdConfig as { etcdPrefix: string }).etcdPrefix}/`;
    const file = writeConf(conf);
    const sts = await api.setStatefulSet(makeStatefulSet({ name: "db" }));
    await api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    const args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=db-0";
    const ip = await add(conf, "c-db0", args);
    const hex = ip.split(".").map((b) => Number(b).toString(16).padStart(2, "0")).join("");
    expect((await runPlugin(conf, { command: "DEL", containerID: "c-db0", args })).exitCode).toBe(0);
    await api.deletePod("default", "db-0");

    const show = ok(await runCli(["show", ip, "--conf", file, "-o", "json"])).json;
    expect(show.held).toMatchObject({ ip, containerID: "c-db0", podNamespace: "default", podName: "db-0", kind: "sticky" });
    expect(show.held.parkedAt).toMatch(ISO);
    expect(Date.parse(show.held.parkedAt)).toBeGreaterThanOrEqual(Date.parse(show.held.allocatedAt));
    const table = ok(await runCli(["show", ip, "--conf", file])).stdout.split("\n");
    expect(table).toContain("Status:          held by pod default/db-0, parked (sticky: kept for the pod name while no container has it)");
    expect(table).toContain("Kind:            sticky");
    expect(table.some((l) => /^Parked: {10}\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/.test(l))).toBe(true);
    expect(ok(await runCli(["usage", "--conf", file, "-o", "json"])).json[0]).toMatchObject({ size: 18, used: 1, reserved: 0, free: 17 });

    const before = await etcdKeys(prefix);
    expect(Object.keys(before.kvs).map((k) => k.slice(prefix.length)).sort())
      .toEqual(["networks/opsnet/cursors/node-7/0a0a000a-0a0a001d", `networks/opsnet/ips/4/${hex}`, `networks/opsnet/sticky/default/db-0/4-${hex}`]);
    const refused = await runCli(["release", ip, "--conf", file]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toStartWith(
      `kube-ipam: ${ip} is held by pod default/db-0 (container c-db0, interface eth0, node node-7, kind sticky, parked since ${show.held.parkedAt}).`,
    );
    expect(await etcdKeys(prefix)).toEqual(before);

    const released = ok(await runCli(["release", ip, "--conf", file, "--yes"]));
    expect(released.stdout).toBe(
      `Released ${ip} in network "opsnet" from pod default/db-0 (container c-db0, interface eth0, node node-7, kind sticky, ` +
        `parked since ${show.held.parkedAt}); the address is no longer kept for pod default/db-0\n`,
    );
    // The record and its sticky index are gone; only the node's round-robin cursor stays.
    expect((await etcdKeys(prefix)).kvs).toEqual({ [`${prefix}networks/opsnet/cursors/node-7/0a0a000a-0a0a001d`]: hex });
    expect(ok(await runCli(["ls", "--conf", file, "-o", "json"])).json).toEqual([]);
  });
});
