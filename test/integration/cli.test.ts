// The command line (no CNI_COMMAND): version, help, example-config, ls. The real binary; every
// test that touches a store works in its own temporary directory.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")).version;
const KINDS = ["macvlan", "ipvlan", "bridge", "calico"] as const;
const USAGE_HINT = 'Run "kube-ipam help" for usage.\n';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-cli-");
});
afterEach(() => dir.cleanup());

function writeConf(name: string, conf: unknown): string {
  const file = join(dir.path, name);
  writeFileSync(file, JSON.stringify(conf, null, 2));
  return file;
}

describe("version and help", () => {
  test.each([["version"], ["-version"], ["--version"]])("%s prints the version", async (arg) => {
    const r = await runCli([arg]);
    expect(r).toMatchObject({ exitCode: 0, stdout: `kube-ipam ${VERSION}\n`, stderr: "" });
  });

  test.each([["help"], ["-help"], ["--help"], ["-h"]])("%s prints the help on stdout", async (arg) => {
    const r = await runCli([arg]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toStartWith(`kube-ipam ${VERSION}: `);
    for (const word of ["ls --conf FILE", "example-config", "version", "help", "CNI_COMMAND"]) expect(r.stdout).toContain(word);
  });

  test("no arguments: the help on stderr, exit 2", async () => {
    const r = await runCli([]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe((await runCli(["help"])).stdout);
  });

  test("an unknown command is a usage error", async () => {
    const r = await runCli(["frobnicate"]);
    expect(r).toMatchObject({ exitCode: 2, stdout: "", stderr: `kube-ipam: Unknown command "frobnicate"\n${USAGE_HINT}` });
  });
});

describe("example-config", () => {
  for (const kind of KINDS) {
    test(`${kind}: a config the plugin accepts`, async () => {
      const r = await runCli(["example-config", kind]);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toBe("");
      const conf = r.json;
      expect(conf).toMatchObject({ cniVersion: "1.0.0", name: `${kind}-net`, type: kind, ipam: { type: "kube-ipam" } });
      expect(conf.ipam.etcdConfig.etcdURL).toStartWith("https://");

      delete conf.ipam.etcdConfig;
      conf.ipam.dataDir = join(dir.path, "data");
      conf.ipam.logFile = join(dir.path, "kube-ipam.log");
      if (!existsSync(conf.ipam.resolvConf)) {
        conf.ipam.resolvConf = join(dir.path, "resolv.conf");
        writeFileSync(conf.ipam.resolvConf, "nameserver 10.96.0.10\n");
      }
      const add = await runPlugin(conf, { command: "ADD" });
      expect({ exitCode: add.exitCode, stderr: add.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(add.json.cniVersion).toBe("1.0.0");
      expect(add.json.ips).toEqual([{ address: "10.188.0.10/16", gateway: "10.188.0.1" }]);
      expect(add.json.routes).toEqual([{ dst: "0.0.0.0/0" }]);

      const file = writeConf(`${kind}.conf`, conf);
      const ls = await runCli(["ls", "--conf", file, "-o", "json"]);
      expect(ls.json.map((a: { ip: string; network: string }) => [a.ip, a.network])).toEqual([["10.188.0.10", `${kind}-net`]]);
      expect((await runPlugin(conf, { command: "DEL" })).exitCode).toBe(0);
    });
  }

  test("defaults to macvlan, and -outputconf is the seed's spelling", async () => {
    const plain = await runCli(["example-config"]);
    expect(plain.exitCode).toBe(0);
    expect(plain.json.type).toBe("macvlan");
    expect((await runCli(["-outputconf"])).stdout).toBe(plain.stdout);
    expect((await runCli(["example-config", "macvlan"])).stdout).toBe(plain.stdout);
  });

  test("an unknown kind is refused", async () => {
    const r = await runCli(["example-config", "flannel"]);
    expect(r).toMatchObject({
      exitCode: 2,
      stdout: "",
      stderr: `kube-ipam: No example for "flannel": choose one of macvlan, ipvlan, bridge, calico\n${USAGE_HINT}`,
    });
  });
});

describe("ls", () => {
  const FIELDS = ["allocatedAt", "containerID", "ifName", "ip", "kind", "network", "node", "podName", "podNamespace"];

  function conf(ipam: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
    return fileNetConf(dir.path, { nodeName: "node-7", ...ipam }, top);
  }

  async function populate(c: unknown): Promise<void> {
    const adds = [
      { containerID: "0123456789abcdef0123", args: "K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;IP=10.10.0.10" },
      { containerID: "second", ifName: "net1", args: "K8S_POD_NAMESPACE=dev;K8S_POD_NAME=api-1;IP=10.10.0.9" },
      { containerID: "third" },
    ];
    for (const call of adds) expect((await runPlugin(c, { command: "ADD", ...call })).exitCode).toBe(0);
  }

  test("-o json: one object per address, sorted by address, with pod namespace and name from CNI_ARGS", async () => {
    const c = conf();
    await populate(c);
    const r = await runCli(["ls", "--conf", writeConf("net.conf", c), "-o", "json"]);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    const list = r.json as Record<string, unknown>[];
    for (const a of list) {
      expect(Object.keys(a).sort()).toEqual(FIELDS);
      expect(new Date(a.allocatedAt as string).toISOString()).toBe(a.allocatedAt as string);
    }
    expect(list.map(({ allocatedAt: _, ...rest }) => rest)).toEqual([
      { ip: "10.10.0.2", network: "testnet", containerID: "third", ifName: "eth0", podNamespace: null, podName: null, node: "node-7", kind: "dynamic" },
      { ip: "10.10.0.9", network: "testnet", containerID: "second", ifName: "net1", podNamespace: "dev", podName: "api-1", node: "node-7", kind: "requested" },
      {
        ip: "10.10.0.10",
        network: "testnet",
        containerID: "0123456789abcdef0123",
        ifName: "eth0",
        podNamespace: "prod",
        podName: "web-0",
        node: "node-7",
        kind: "requested",
      },
    ]);
  });

  test("--output=json and --conf=FILE spellings", async () => {
    const c = conf();
    await populate(c);
    const r = await runCli(["ls", `--conf=${writeConf("net.conf", c)}`, "--output=json"]);
    expect(r.exitCode).toBe(0);
    expect(r.json.map((a: { ip: string }) => a.ip)).toEqual(["10.10.0.2", "10.10.0.9", "10.10.0.10"]);
  });

  test("table: a header and one aligned row per address", async () => {
    const c = conf();
    await populate(c);
    const r = await runCli(["ls", "--conf", writeConf("net.conf", c)]);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.length).toBe(4);
    const cells = lines.map((l) => l.split(/ {2,}/));
    expect(cells[0]).toEqual(["ADDRESS", "NETWORK", "POD", "NAMESPACE", "NODE", "INTERFACE", "CONTAINER", "KIND", "AGE"]);
    expect(cells.slice(1).map((row) => row.slice(0, 8))).toEqual([
      ["10.10.0.2", "testnet", "-", "-", "node-7", "eth0", "third", "dynamic"],
      ["10.10.0.9", "testnet", "api-1", "dev", "node-7", "net1", "second", "requested"],
      ["10.10.0.10", "testnet", "web-0", "prod", "node-7", "eth0", "0123456789ab", "requested"],
    ]);
    for (const row of cells.slice(1)) expect(row[8]).toMatch(/^\d+[smhd]/);
    // Columns line up: every column starts at the header's offset.
    for (const name of ["NETWORK", "POD", "KIND", "AGE"]) {
      const at = lines[0]!.indexOf(name);
      for (const line of lines.slice(1)) expect(line[at - 1]).toBe(" ");
    }
  });

  test("an empty network", async () => {
    const file = writeConf("net.conf", conf());
    const table = await runCli(["ls", "--conf", file]);
    expect(table).toMatchObject({ exitCode: 0, stdout: 'No addresses held in network "testnet"\n', stderr: "" });
    const json = await runCli(["ls", "--conf", file, "-o", "json"]);
    expect(json.exitCode).toBe(0);
    expect(json.json).toEqual([]);
  });

  test("--conf with a .conflist picks the kube-ipam plugin and the list's name", async () => {
    const entry = conf();
    const list = {
      cniVersion: "1.0.0",
      name: "listnet",
      plugins: [
        { type: "bridge", bridge: "cni0", ipam: entry.ipam },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    };
    // What a runtime passes to the bridge plugin of that list.
    const runtimeConf = { cniVersion: "1.0.0", name: "listnet", ...list.plugins[0] };
    expect((await runPlugin(runtimeConf, { command: "ADD", containerID: "abc" })).exitCode).toBe(0);
    const r = await runCli(["ls", "--conf", writeConf("net.conflist", list), "-o", "json"]);
    expect(r.exitCode).toBe(0);
    expect(r.json.map((a: Record<string, string>) => [a.ip, a.network, a.containerID])).toEqual([["10.10.0.2", "listnet", "abc"]]);
  });

  test("a .conflist without a kube-ipam plugin is refused", async () => {
    const file = writeConf("other.conflist", { cniVersion: "1.0.0", name: "x", plugins: [{ type: "bridge", ipam: { type: "host-local" } }] });
    const r = await runCli(["ls", "--conf", file]);
    expect(r).toMatchObject({
      exitCode: 1,
      stdout: "",
      stderr: `kube-ipam: Invalid "${file}" plugins: no plugin has "ipam": {"type": "kube-ipam"}\n`,
    });
  });

  test("--conf /dev/stdin", async () => {
    const c = conf();
    await populate(c);
    const r = await runCli(["ls", "--conf", "/dev/stdin", "-o", "json"], { stdin: JSON.stringify(c) });
    expect(r.exitCode).toBe(0);
    expect(r.json.map((a: { ip: string }) => a.ip)).toEqual(["10.10.0.2", "10.10.0.9", "10.10.0.10"]);
  });

  test("missing --conf is a usage error, exit 2", async () => {
    const r = await runCli(["ls", "-o", "json"]);
    expect(r).toMatchObject({
      exitCode: 2,
      stdout: "",
      stderr: `kube-ipam: This command needs --conf FILE: the CNI network config (.conf or .conflist)\n${USAGE_HINT}`,
    });
  });

  test("--conf without a value is a usage error", async () => {
    const r = await runCli(["ls", "--conf"]);
    expect(r).toMatchObject({ exitCode: 2, stdout: "", stderr: `kube-ipam: Flag "--conf" needs a value\n${USAGE_HINT}` });
  });

  test("an unknown output format is a usage error", async () => {
    const r = await runCli(["ls", "--conf", writeConf("net.conf", conf()), "-o", "yaml"]);
    expect(r).toMatchObject({ exitCode: 2, stdout: "", stderr: `kube-ipam: Output format "yaml" is not "table" or "json"\n${USAGE_HINT}` });
  });

  test("an unreadable --conf file names the file, exit 1", async () => {
    const missing = join(dir.path, "missing.conf");
    const r = await runCli(["ls", "--conf", missing]);
    expect(r).toMatchObject({
      exitCode: 1,
      stdout: "",
      stderr: `kube-ipam: Invalid --conf "${missing}": cannot read the file: ENOENT: no such file or directory, open '${missing}'\n`,
    });
  });

  test("a bad config in --conf is reported like the plugin reports it", async () => {
    const r = await runCli(["ls", "--conf", writeConf("bad.conf", conf({ subnet: "10.10.0.0/31" }))]);
    expect(r).toMatchObject({
      exitCode: 1,
      stdout: "",
      stderr: 'kube-ipam: Invalid ipam.subnet: subnet "10.10.0.0/31" is too small to allocate from (at most /30)\n',
    });
  });
});
