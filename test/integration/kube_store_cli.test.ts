// The CLI on the Kubernetes store, as cli_ops.test.ts and k8s_addresses.test.ts have it on etcd: ls, show,
// usage, release, and reserve/unreserve/reserved, with the built binary against a real kube-apiserver with
// kube-ipam's custom resources. The plugin and the read-only commands run as the plugin's ServiceAccount (its token);
// reservations are written by an operator (the fixture's admin certificate): the plugin's ClusterRole
// only reads them, and the CLI says which verb on which resource it lacks. "Changes nothing" is checked on
// the objects themselves (names, resourceVersions, specs) and on the audit log: no write request was made.
import { afterEach, describe, expect, test } from "bun:test";
import { makePod, makeStatefulSet, PLUGIN_USER } from "../support/kube_apiserver.ts";
import { allocationObjects, asAdmin, clearReservations, cli, type KubeConf, kubeNetConf, ls, useKubeDatastore, writeConf } from "../support/kube_datastore.ts";
import { runCli, runPlugin } from "../support/plugin.ts";

const env = useKubeDatastore();
afterEach(() => clearReservations(env.api));

const USAGE_HINT = 'Run "kube-ipam help" for usage.\n';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let nets = 0;
/** A network of its own whose name is as long as cli_ops.test.ts's "opsnet" (the tables' widths are the same). */
function conf(ipam: Record<string, unknown> = {}): KubeConf {
  return kubeNetConf(env, { nodeName: "node-7", ...ipam }, `opsn${String(nets++).padStart(2, "0")}`);
}

/** The pool of most tests: 10.10.0.10-10.10.0.29 (20), 2 excluded; three holders; "keep" reserves .12-.14. */
const POOL = { subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.29", exclude: ["10.10.0.20-10.10.0.21"] };

async function add(c: unknown, containerID: string, args: string, ifName = "eth0"): Promise<string> {
  const r = await runPlugin(c, { command: "ADD", containerID, ifName, args });
  if (r.exitCode !== 0) throw new Error(`ADD ${containerID} failed: ${r.stdout}${r.stderr}`);
  return r.json.ips[0].address.split("/")[0];
}

/**
 * Three holders (two of them pods, which the plugin reads from the API as on any store with a kubeconfig) and
 * the reservation "keep" (written as the operator); returns the plugin's config file.
 */
async function populate(c: KubeConf): Promise<string> {
  await env.api.setPod(makePod({ namespace: "prod", name: "web-0" }));
  await env.api.setPod(makePod({ namespace: "dev", name: "api-1" }));
  await add(c, "0123456789abcdef0123", "K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;IP=10.10.0.12");
  await add(c, "second", "K8S_POD_NAMESPACE=dev;K8S_POD_NAME=api-1;IP=10.10.0.10", "net1");
  await add(c, "third", "IP=10.10.0.25");
  await cli("reserve", "keep", "10.10.0.12-10.10.0.14", "--conf", writeConf(env, asAdmin(env, c)));
  return writeConf(env, c);
}

/** Every kube-ipam object of the cluster as stored (a write to any of them changes its resourceVersion). */
async function snapshot(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const kind of ["ipallocations", "ipcursors", "ipreservations"]) {
    const r = await env.api.request("GET", `/apis/kube-ipam.io/v1alpha1/${kind}`);
    out[kind] = r.body.items.map((o: any) => [o.metadata.name, o.metadata.resourceVersion, o.spec]);
  }
  return out;
}

/** What the plugin's identity asked the API since `api.clearRequests()` other than reads. */
const writes = () => env.api.requests.filter((r) => !r.startsWith("GET "));

describe("ls and show", () => {
  test("ls -o json and the table: one row per address in address order, with pods from CNI_ARGS", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    const list = (await cli("ls", "--conf", file, "-o", "json")).json as Record<string, unknown>[];
    for (const a of list) {
      expect(Object.keys(a).sort()).toEqual(["allocatedAt", "containerID", "ifName", "ip", "kind", "network", "node", "podName", "podNamespace"]);
      expect(new Date(a.allocatedAt as string).toISOString()).toBe(a.allocatedAt as string);
    }
    const base = { network: c.name, node: "node-7", kind: "requested" };
    expect(list.map(({ allocatedAt: _, ...rest }) => rest)).toEqual([
      { ...base, ip: "10.10.0.10", containerID: "second", ifName: "net1", podNamespace: "dev", podName: "api-1" },
      { ...base, ip: "10.10.0.12", containerID: "0123456789abcdef0123", ifName: "eth0", podNamespace: "prod", podName: "web-0" },
      { ...base, ip: "10.10.0.25", containerID: "third", ifName: "eth0", podNamespace: null, podName: null },
    ]);
    const lines = (await cli("ls", "--conf", file)).stdout.trimEnd().split("\n");
    const cells = lines.map((l) => l.split(/ {2,}/));
    expect(cells[0]).toEqual(["ADDRESS", "NETWORK", "POD", "NAMESPACE", "NODE", "INTERFACE", "CONTAINER", "KIND", "AGE"]);
    expect(cells.slice(1).map((row) => row.slice(0, 8))).toEqual([
      ["10.10.0.10", c.name, "api-1", "dev", "node-7", "net1", "second", "requested"],
      ["10.10.0.12", c.name, "web-0", "prod", "node-7", "eth0", "0123456789ab", "requested"],
      ["10.10.0.25", c.name, "-", "-", "node-7", "eth0", "third", "requested"],
    ]);
  });

  test("show -o json: the holder (the fields of ls, plus parkedAt) and the reservation that lists the address", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    const r = await cli("show", "10.10.0.12", "--conf", file, "-o", "json");
    const { allocatedAt, ...held } = r.json.held;
    expect({ ...r.json, held }).toEqual({
      ip: "10.10.0.12",
      network: c.name,
      held: {
        ip: "10.10.0.12", network: c.name, containerID: "0123456789abcdef0123", ifName: "eth0", podNamespace: "prod",
        podName: "web-0", node: "node-7", kind: "requested", parkedAt: null,
      },
      reservedBy: "keep",
      inRange: true,
      excluded: false,
      infrastructure: false,
    });
    expect(allocatedAt).toMatch(ISO);
    const listed = (await cli("ls", "--conf", file, "-o", "json")).json.find((a: { ip: string }) => a.ip === "10.10.0.12");
    expect({ ...listed, parkedAt: null }).toEqual(r.json.held);

    const free: [string, Record<string, unknown>][] = [
      ["10.10.0.11", { reservedBy: null, inRange: true, excluded: false, infrastructure: false }],
      ["10.10.0.13", { reservedBy: "keep", inRange: true, excluded: false, infrastructure: false }],
      ["10.10.0.21", { reservedBy: null, inRange: true, excluded: true, infrastructure: false }],
      ["10.10.0.1", { reservedBy: null, inRange: false, excluded: false, infrastructure: true }],
      ["192.168.1.1", { reservedBy: null, inRange: false, excluded: false, infrastructure: false }],
    ];
    for (const [addr, expected] of free) {
      expect((await cli("show", addr, "--conf", file, "-o", "json")).json).toEqual({ ip: addr, network: c.name, held: null, ...expected });
    }
  });

  test("show's table: one line per fact, the holder's details and age", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    const lines = (await cli("show", "10.10.0.10", "--conf", file)).stdout.trimEnd().split("\n");
    expect(lines.filter((l) => !l.startsWith("Allocated:"))).toEqual([
      "Address:         10.10.0.10",
      `Network:         ${c.name}`,
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
    const reserved = (await cli("show", "10.10.0.14", "--conf", file)).stdout.split("\n");
    expect(reserved).toContain('Status:          not held; reserved by "keep", so not handed out');
  });
});

describe("usage", () => {
  test("-o json and the table: size without excluded addresses, held, reserved-but-free, free", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    expect((await cli("usage", "--conf", file, "-o", "json")).json).toEqual([
      { network: c.name, rangeSet: 0, subnet: "10.10.0.0/24", range: "10.10.0.10-10.10.0.29", size: 18, used: 3, reserved: 2, free: 13 },
    ]);
    expect((await cli("usage", "--conf", file)).stdout).toBe([
      "NETWORK  SET  SUBNET        RANGE                  SIZE  USED  RESERVED  FREE  USAGE",
      `${c.name}   0    10.10.0.0/24  10.10.0.10-10.10.0.29    18     3         2    13  [##r.......] 17%`,
      "USAGE: # held, r reserved, . free; the percentage is held / size",
      "",
    ].join("\n"));
  });

  test("an empty pool", async () => {
    const c = conf(POOL);
    expect((await cli("usage", "--conf", writeConf(env, c), "-o", "json")).json).toEqual([
      { network: c.name, rangeSet: 0, subnet: "10.10.0.0/24", range: "10.10.0.10-10.10.0.29", size: 18, used: 0, reserved: 0, free: 18 },
    ]);
  });
});

describe("release", () => {
  const HOLDER = "pod dev/api-1 (container second, interface net1, node node-7, kind requested)";

  test("without --yes: exit 2, names the holder and --yes, and writes nothing", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    const before = await snapshot();
    env.api.clearRequests();
    const r = await runCli(["release", "10.10.0.10", "--conf", file]);
    expect(r).toMatchObject({
      exitCode: 2,
      stdout: "",
      stderr: `kube-ipam: 10.10.0.10 is held by ${HOLDER}. Releasing it takes it from its holder while the pod may ` +
        `still use it: add --yes to release it\n${USAGE_HINT}`,
    });
    expect(writes()).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  test("--yes: deletes exactly that address's IPAllocation; DEL of its container then finds nothing; the address is handed out again", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    env.api.clearRequests();
    const r = await cli("release", "10.10.0.10", "--conf", file, "--yes");
    expect(r.stdout).toBe(`Released 10.10.0.10 in network "${c.name}" from ${HOLDER}\n`);
    // One write: the conditional delete of that one object.
    expect(writes()).toEqual([`DELETE /apis/kube-ipam.io/v1alpha1/ipallocations/${c.name}.10-10-0-10`]);
    const held = await ls(env, c);
    expect(held.map((a) => [a.ip, a.containerID])).toEqual([["10.10.0.12", "0123456789abcdef0123"], ["10.10.0.25", "third"]]);
    expect((await allocationObjects(env.api, c.name)).map((o) => o.metadata.name).sort()).toEqual([`${c.name}.10-10-0-12`, `${c.name}.10-10-0-25`]);
    expect((await cli("usage", "--conf", file, "-o", "json")).json[0]).toMatchObject({ used: 2, reserved: 2, free: 14 });

    expect((await runPlugin(c, { command: "DEL", containerID: "second", ifName: "net1" })).exitCode).toBe(0);
    expect(await ls(env, c)).toEqual(held);
    await add(c, "newcomer", "IP=10.10.0.10");
    expect((await cli("show", "10.10.0.10", "--conf", file, "-o", "json")).json.held.containerID).toBe("newcomer");
  });

  test("an address nobody holds: exit 1 with or without --yes, nothing written", async () => {
    const c = conf(POOL);
    const file = await populate(c);
    const before = await snapshot();
    env.api.clearRequests();
    for (const [addr, extra] of [["10.10.0.11", ["--yes"]], ["10.10.0.13", []], ["fd00::1", ["--yes"]]] as const) {
      const r = await runCli(["release", addr, "--conf", file, ...extra]);
      expect(r).toMatchObject({ exitCode: 1, stdout: "", stderr: `kube-ipam: ${addr} is not held in network "${c.name}": nothing to release\n` });
    }
    expect(writes()).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  test("a parked sticky address: show says parked, usage counts it, release without --yes writes nothing, --yes deletes the object", async () => {
    const c = conf(POOL);
    const file = writeConf(env, c);
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "db" }));
    await env.api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    const args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=db-0";
    const ip = await add(c, "c-db0", args);
    expect((await runPlugin(c, { command: "DEL", containerID: "c-db0", args })).exitCode).toBe(0);
    await env.api.deletePod("default", "db-0");

    const show = (await cli("show", ip, "--conf", file, "-o", "json")).json;
    expect(show.held).toMatchObject({ ip, containerID: "c-db0", podNamespace: "default", podName: "db-0", kind: "sticky" });
    expect(show.held.parkedAt).toMatch(ISO);
    const table = (await cli("show", ip, "--conf", file)).stdout.split("\n");
    expect(table).toContain("Status:          held by pod default/db-0, parked (sticky: kept for the pod name while no container has it)");
    expect((await cli("usage", "--conf", file, "-o", "json")).json[0]).toMatchObject({ size: 18, used: 1, reserved: 0, free: 17 });

    const before = await snapshot();
    env.api.clearRequests();
    const refused = await runCli(["release", ip, "--conf", file]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toStartWith(
      `kube-ipam: ${ip} is held by pod default/db-0 (container c-db0, interface eth0, node node-7, kind sticky, parked since ${show.held.parkedAt}).`);
    expect(writes()).toEqual([]);
    expect(await snapshot()).toEqual(before);

    const released = await cli("release", ip, "--conf", file, "--yes");
    expect(released.stdout).toBe(`Released ${ip} in network "${c.name}" from pod default/db-0 (container c-db0, interface eth0, node node-7, ` +
      `kind sticky, parked since ${show.held.parkedAt}); the address is no longer kept for pod default/db-0\n`);
    expect(await allocationObjects(env.api, c.name)).toEqual([]);
    // The node's round-robin cursor stays.
    const cursor = await env.api.request("GET", `/apis/kube-ipam.io/v1alpha1/ipcursors/${c.name}.node-7`);
    expect(cursor.body.spec).toMatchObject({ network: c.name, node: "node-7" });
    expect(await ls(env, c)).toEqual([]);
    await env.api.deleteStatefulSet("default", "db");
  });
});

describe("reserve, unreserve, reserved", () => {
  test("the plugin's identity may read reservations but not write them: the CLI names the user, the verb and the resource", async () => {
    const c = conf({ subnet: "10.10.1.0/24" });
    const file = writeConf(env, c);
    const create = await runCli(["reserve", "printers", "10.10.1.50", "--conf", file]);
    expect(create.exitCode).toBe(1);
    expect(create.stderr).toContain(`User "${PLUGIN_USER}" cannot create resource "ipreservations" in API group "kube-ipam.io"`);
    expect((await cli("reserved", "--conf", file)).stdout).toBe("No reservations\n");

    await cli("reserve", "printers", "10.10.1.50", "--conf", writeConf(env, asAdmin(env, c)));
    const replace = await runCli(["reserve", "printers", "10.10.1.60", "--conf", file]);
    expect(replace.exitCode).toBe(1);
    expect(replace.stderr).toContain('cannot create resource "ipreservations"');
    // unreserve reads the one reservation first (to delete exactly it): the plugin lists reservations, it
    // never gets one by name, so it is refused there, before any write.
    const remove = await runCli(["unreserve", "printers", "--conf", file]);
    expect(remove.exitCode).toBe(1);
    expect(remove.stderr).toContain(`User "${PLUGIN_USER}" cannot get resource "ipreservations" in API group "kube-ipam.io"`);
    // Refused, nothing changed: the operator's reservation is still there as written.
    expect((await cli("reserved", "--conf", file, "-o", "json")).json).toMatchObject([{ name: "printers", entries: ["10.10.1.50"] }]);
  });

  test("as the operator: reserve names the holders in use, new pods avoid the reservation, a requested address in it is code 102, unreserve frees it", async () => {
    const c = conf({ subnet: "10.10.2.0/24", rangeStart: "10.10.2.10", rangeEnd: "10.10.2.13" });
    const admin = writeConf(env, asAdmin(env, c));
    const file = writeConf(env, c);
    await env.api.setPod(makePod({ name: "user" }));
    const inUse = await add(c, "c-user", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=user");

    // The reservation: the address in use and two of the three others, so that exactly one is left.
    const [left, ...others] = ["10.10.2.10", "10.10.2.11", "10.10.2.12", "10.10.2.13"].filter((a) => a !== inUse);
    const entries = [inUse, ...others].sort();
    const reserve = await cli("reserve", "test-ippool", ...entries, "--conf", admin);
    expect(reserve.stdout).toContain(`Reservation "test-ippool" created: ${entries.join(", ")}`);
    expect(reserve.stdout).toContain(`${inUse} (network ${c.name}) is held by pod default/user`);
    expect((await ls(env, c)).map((a) => a.ip)).toEqual([inUse]); // the holder keeps it
    const obj = await env.api.request("GET", "/apis/kube-ipam.io/v1alpha1/ipreservations/test-ippool");
    expect(obj.body.spec).toMatchObject({ name: "test-ippool", entries });
    expect((await cli("reserved", "--conf", file, "-o", "json")).json).toMatchObject([{ name: "test-ippool", entries }]);
    expect((await cli("reserve", "test-ippool", ...entries, "--conf", admin)).stdout).toContain('Reservation "test-ippool" replaced');

    // Released: not handed out again while reserved. Only the one unreserved address is left.
    expect((await runPlugin(c, { command: "DEL", containerID: "c-user" })).exitCode).toBe(0);
    expect(await add(c, "c-d1", "")).toBe(left!);
    const full = await runPlugin(c, { command: "ADD", containerID: "c-d2" });
    expect(full.json.code).toBe(100);
    const wants = await runPlugin(c, { command: "ADD", containerID: "c-wr", args: `IP=${others[0]}` });
    expect(wants.json.code).toBe(102);
    expect(wants.json.msg).toBe(`Address "${others[0]}" is reserved by "test-ippool": choose another address or run "kube-ipam unreserve test-ippool"`);

    expect((await cli("unreserve", "test-ippool", "--conf", admin)).stdout).toBe('Reservation "test-ippool" removed: its free addresses can be handed out again\n');
    expect((await runPlugin(c, { command: "ADD", containerID: "c-d2" })).exitCode).toBe(0);
    const again = await runCli(["unreserve", "test-ippool", "--conf", admin]);
    expect(again).toMatchObject({ exitCode: 1, stderr: 'kube-ipam: No reservation "test-ippool": "kube-ipam reserved --conf FILE" lists them\n' });
  });

  test("a name that is not a DNS label is kept exactly: listed, applied and removed under its own name", async () => {
    const c = conf({ subnet: "10.10.3.0/24", rangeStart: "10.10.3.10", rangeEnd: "10.10.3.11" });
    const admin = writeConf(env, asAdmin(env, c));
    await cli("reserve", "Printers_Floor.2", "10.10.3.10", "--conf", admin);
    expect((await cli("reserved", "--conf", writeConf(env, c), "-o", "json")).json).toMatchObject([{ name: "Printers_Floor.2", entries: ["10.10.3.10"] }]);
    expect(await add(c, "c1", "")).toBe("10.10.3.11");
    expect((await runPlugin(c, { command: "ADD", containerID: "c2" })).json.code).toBe(100);
    await cli("unreserve", "Printers_Floor.2", "--conf", admin);
    expect(await add(c, "c2", "")).toBe("10.10.3.10");
  });
});
