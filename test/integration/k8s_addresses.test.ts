// Kubernetes-aware addresses on real etcd, with a real kube-apiserver: fixed IPs
// from annotations, sticky StatefulSet IPs, reserved IPs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EtcdServer, freePorts, startEtcd } from "../support/etcd.ts";
import { type KubeApiServer, makePod, makeStatefulSet, NO_RIGHTS_USER, startKubeApiServer } from "../support/kube_apiserver.ts";
import { etcdNetConf, listAllocations, mapLimit, runCli, runPlugin, tempDir } from "../support/plugin.ts";

let etcd: EtcdServer;
let api: KubeApiServer;
let kubeconfig: string;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  [etcd, api] = await Promise.all([startEtcd(), startKubeApiServer()]);
  kubeconfig = api.writeKubeconfig(join(dir.path, "kube"), "token");
}, 90_000);
afterAll(async () => {
  await api?.stop();
  await etcd.stop();
  dir.cleanup();
});

/** The seed's network (10.188.0.0/16, .10-.200) on the test etcd, with the kubeconfig of the plugin's ServiceAccount. */
function netConf(ipam: Record<string, unknown> = {}) {
  return etcdNetConf(etcd.endpoint, dir.path, {
    subnet: "10.188.0.0/16",
    rangeStart: "10.188.0.10",
    rangeEnd: "10.188.0.200",
    gateway: "10.188.0.1",
    kubeConfig: kubeconfig,
    ...ipam,
  });
}

function writeConf(conf: unknown): string {
  const path = join(dir.path, `${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  return path;
}

const ls = (conf: unknown) => listAllocations(conf, dir.path);

function podArgs(namespace: string, name: string): string {
  return `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=x`;
}

function add(conf: unknown, containerID: string, pod: string, opts: { ns?: string; ifName?: string; node?: string } = {}) {
  return runPlugin(conf, {
    command: "ADD",
    containerID,
    ifName: opts.ifName ?? "eth0",
    args: podArgs(opts.ns ?? "default", pod),
    env: { KUBE_IPAM_NODE_NAME: opts.node ?? "node-1" },
  });
}

function del(conf: unknown, containerID: string, pod: string, ifName = "eth0") {
  return runPlugin(conf, { command: "DEL", containerID, ifName, args: podArgs("default", pod) });
}

const seedAnnotations = { "kube-ipam.ip": "10.188.0.216", "kube-ipam.netmask": "255.255.0.0", "kube-ipam.gateway": "10.188.0.1" };

describe("fixed IPs from annotations", () => {
  test("the seed's walkthrough: the pod gets 10.188.0.216, and its replacement gets it again", async () => {
    const conf = netConf();
    await api.setPod(makePod({ name: "fixed-ip-test-6d9b74fd4d-dbbsd", annotations: seedAnnotations }));
    const first = await add(conf, "sandbox-1", "fixed-ip-test-6d9b74fd4d-dbbsd");
    expect(first.json).toEqual({ cniVersion: "1.0.0", ips: [{ address: "10.188.0.216/16", gateway: "10.188.0.1" }] });
    expect(await ls(conf)).toMatchObject([{ ip: "10.188.0.216", kind: "fixed", podName: "fixed-ip-test-6d9b74fd4d-dbbsd" }]);

    // kubectl delete pod: the runtime's DEL, then the Deployment's new pod.
    expect((await del(conf, "sandbox-1", "fixed-ip-test-6d9b74fd4d-dbbsd")).exitCode).toBe(0);
    await api.deletePod("default", "fixed-ip-test-6d9b74fd4d-dbbsd");
    await api.setPod(makePod({ name: "fixed-ip-test-6d9b74fd4d-xjhek", annotations: seedAnnotations }));
    const second = await add(conf, "sandbox-2", "fixed-ip-test-6d9b74fd4d-xjhek");
    expect(second.json.ips).toEqual([{ address: "10.188.0.216/16", gateway: "10.188.0.1" }]);
  });

  test("a second live pod asking for the address is refused, naming the holder", async () => {
    const conf = netConf();
    await api.setPod(makePod({ name: "holder", annotations: { "kube-ipam.ip": "10.188.0.217" } }));
    await api.setPod(makePod({ name: "surge", annotations: { "kube-ipam.ip": "10.188.0.217" } }));
    expect((await add(conf, "c-holder", "holder")).exitCode).toBe(0);
    const refused = await add(conf, "c-surge", "surge");
    expect(refused.json.code).toBe(101);
    expect(refused.json.msg).toStartWith(`Address "10.188.0.217" in network "${conf.name}" is held by pod "default/holder", container "c-holder"`);
    // The rolling update goes on: the old pod's DEL frees it, the surge pod's retry gets it.
    await del(conf, "c-holder", "holder");
    expect((await add(conf, "c-surge", "surge")).json.ips[0].address).toBe("10.188.0.217/16");
  });

  test("takeover when the holder vanished without DEL; the old sandbox's late DEL releases nothing", async () => {
    const conf = netConf();
    await api.setPod(makePod({ name: "lost", annotations: { "kube-ipam.ip": "10.188.0.218" } }));
    expect((await add(conf, "c-lost", "lost", { node: "dead-node" })).exitCode).toBe(0);
    await api.deletePod("default", "lost"); // node lost: the API forgets the pod, no DEL ever ran
    await api.setPod(makePod({ name: "replacement", annotations: { "kube-ipam.ip": "10.188.0.218" } }));
    const r = await add(conf, "c-new", "replacement", { node: "node-2" });
    expect(r.json.ips[0].address).toBe("10.188.0.218/16");
    expect(await ls(conf)).toMatchObject([{ ip: "10.188.0.218", containerID: "c-new", podName: "replacement", node: "node-2" }]);
    expect((await del(conf, "c-lost", "lost")).exitCode).toBe(0);
    expect((await ls(conf)).map((a) => a.containerID)).toEqual(["c-new"]);
  });

  test("an address held dynamically by a live pod is refused; dynamic pods never get a fixed address", async () => {
    // Pool of 4: .10-.13. A fixed pod takes .11 inside the range; dynamic pods skip it.
    const conf = netConf({ rangeStart: "10.188.0.10", rangeEnd: "10.188.0.13" });
    await api.setPod(makePod({ name: "fixed-in-range", annotations: { "kube-ipam.ip": "10.188.0.11" } }));
    expect((await add(conf, "c-fixed", "fixed-in-range")).exitCode).toBe(0);
    const dyn: string[] = [];
    for (const i of [1, 2, 3]) {
      await api.setPod(makePod({ name: `dyn-${i}` }));
      const r = await add(conf, `c-dyn-${i}`, `dyn-${i}`);
      dyn.push(r.json.ips[0].address);
    }
    expect(dyn.sort()).toEqual(["10.188.0.10/16", "10.188.0.12/16", "10.188.0.13/16"]);
    await api.setPod(makePod({ name: "dyn-4" }));
    expect((await add(conf, "c-dyn-4", "dyn-4")).json.code).toBe(100);

    const held = (await ls(conf)).find((a) => a.ip === "10.188.0.12")!;
    await api.setPod(makePod({ name: "wants-dynamic-one", annotations: { "kube-ipam.ip": "10.188.0.12" } }));
    const refused = await add(conf, "c-wants", "wants-dynamic-one");
    expect(refused.json.code).toBe(101);
    expect(refused.json.msg).toContain(`pod "default/${held.podName}"`);
  });

  test("dual-stack fixed addresses, each to the range set of its family", async () => {
    const conf = netConf({
      subnet: undefined, rangeStart: undefined, rangeEnd: undefined, gateway: undefined,
      ranges: [[{ subnet: "10.60.0.0/24" }], [{ subnet: "fd00:60::/64" }]],
    });
    await api.setPod(makePod({ name: "dual", annotations: { "kube-ipam.ip": "fd00:60::50,10.60.0.50", "kube-ipam.netmask": "64,24" } }));
    const r = await add(conf, "c-dual", "dual");
    expect(r.json.ips).toEqual([
      { address: "10.60.0.50/24", gateway: "10.60.0.1" },
      { address: "fd00:60::50/64", gateway: "fd00:60::1" },
    ]);
  });

  test("kube-ipam.ips maps interfaces to addresses; an unlisted interface is dynamic", async () => {
    const conf = netConf();
    await api.setPod(makePod({ name: "multi", annotations: { "kube-ipam.ips": '{"net1":["10.188.0.230"]}' } }));
    const net1 = await add(conf, "c-multi", "multi", { ifName: "net1" });
    const net2 = await add(conf, "c-multi", "multi", { ifName: "net2" });
    expect(net1.json.ips[0].address).toBe("10.188.0.230/16");
    expect(net2.json.ips[0].address).not.toBe("10.188.0.230/16");
    const kinds = Object.fromEntries((await ls(conf)).map((a) => [a.ifName, a.kind]));
    expect(kinds).toEqual({ net1: "fixed", net2: "dynamic" });
  });

  test.each([
    [{ "kube-ipam.ip": "10.188.0.999" }, 'Invalid annotation kube-ipam.ip of pod "default/bad-POD": "10.188.0.999" is not an IP address'],
    [{ "kube-ipam.ip": "10.99.0.5" }, 'Invalid annotation kube-ipam.ip of pod "default/bad-POD": "10.99.0.5" is in no subnet of network "NET"'],
    [{ "kube-ipam.ip": "10.188.0.216", "kube-ipam.netmask": "255.0.255.0" }, 'Invalid annotation kube-ipam.netmask of pod "default/bad-POD": "255.0.255.0" is not a netmask or prefix length for 10.188.0.216'],
    [{ "kube-ipam.ip": "10.188.0.216", "kube-ipam.gateway": "fd00::1" }, 'Invalid annotation kube-ipam.gateway of pod "default/bad-POD": "fd00::1" is not a gateway address for 10.188.0.216'],
    [{ "kube-ipam.ips": "{net1:" }, 'Invalid annotation kube-ipam.ips of pod "default/bad-POD": is not JSON: expected a map like {"net1": ["10.0.0.5"]}'],
    [{ "kube-ipam.ips": '{"eth0": [5]}' }, 'Invalid annotation kube-ipam.ips of pod "default/bad-POD": the entry for "eth0" must be a list of addresses'],
    [{ "kube-ipam.sticky": "yes" }, 'Invalid annotation kube-ipam.sticky of pod "default/bad-POD": "yes" is not "true" or "false"'],
  ])("malformed annotations are a config error naming the annotation and pod: %j", async (annotations, message) => {
    const conf = netConf();
    const name = `bad-${conf.name}`;
    await api.setPod(makePod({ name, annotations }));
    const r = await add(conf, `c-${name}`, name);
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toBe(message.replace("bad-POD", name).replace("NET", conf.name));
    expect(await ls(conf)).toEqual([]);
  });

  test("concurrent requests for one fixed address from many pods: exactly one wins", async () => {
    const conf = netConf();
    const names = Array.from({ length: 12 }, (_, i) => `racer-${i}`);
    for (const name of names) await api.setPod(makePod({ name, annotations: { "kube-ipam.ip": "10.188.0.240" } }));
    const replies = await mapLimit(names, 12, (name, i) => add(conf, `c-${name}`, name, { node: `node-${i % 4}` }));
    const winners = replies.filter((r) => r.exitCode === 0);
    expect(winners.length).toBe(1);
    for (const r of replies.filter((x) => x.exitCode !== 0)) expect(r.json.code).toBe(101);
    expect((await ls(conf)).length).toBe(1);
  });
});

describe("Kubernetes API failures", () => {
  test("API server down: ADD fails with code 11 naming the server, nothing allocated", async () => {
    const down = `https://127.0.0.1:${freePorts(1)[0]}`;
    const conf = netConf({ kubeConfig: api.writeKubeconfig(join(dir.path, "down"), "token", { server: down }) });
    await api.setPod(makePod({ name: "p" }));
    const r = await add(conf, "c-p", "p");
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain(down);
    expect(await ls(conf)).toEqual([]);
  });

  test("API answering 500, 401 or 403: code 11, never a silent dynamic address", async () => {
    const conf = netConf();
    await api.setPod(makePod({ name: "flaky" }));
    const faults = api.faults();
    faults.failWith(500);
    try {
      const failing = netConf({ kubeConfig: api.writeKubeconfig(join(dir.path, "failing"), "token", { server: faults.url }) });
      const r = await add(failing, "c-flaky", "flaky");
      expect(r.json.code).toBe(11);
      expect(r.json.msg).toContain("500");
    } finally {
      faults.failWith(undefined);
    }
    const wrongToken = netConf({ kubeConfig: api.writeKubeconfig(join(dir.path, "wrong"), "token", { token: "not-the-token" }) });
    let r = await add(wrongToken, "c-flaky", "flaky");
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain("HTTP 401 Unauthorized");
    // A user the API server knows and RBAC grants nothing (lost rights, the wrong ServiceAccount):
    const noRights = netConf({ kubeConfig: api.writeKubeconfig(join(dir.path, "no-rights"), "token", { token: api.noRightsToken }) });
    r = await add(noRights, "c-flaky", "flaky");
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain(`HTTP 403 Forbidden: pods "flaky" is forbidden: User "${NO_RIGHTS_USER}" cannot get resource "pods"`);
    expect(await ls(conf)).toEqual([]);
  });

  test("client-certificate kubeconfig works", async () => {
    const conf = netConf({ kubeConfig: api.writeKubeconfig(join(dir.path, "cert"), "client-cert") });
    await api.setPod(makePod({ name: "cert-pod", annotations: { "kube-ipam.ip": "10.188.0.250" } }));
    expect((await add(conf, "c-cert", "cert-pod")).json.ips[0].address).toBe("10.188.0.250/16");
  });
});

describe("sticky StatefulSet addresses", () => {
  test("a StatefulSet pod keeps its address across delete and re-create, on a pool so small anyone else would take it", async () => {
    const conf = netConf({ rangeStart: "10.188.1.10", rangeEnd: "10.188.1.12" });
    const sts = await api.setStatefulSet(makeStatefulSet({ name: "db" }));
    await api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    const first = (await add(conf, "c-db0-a", "db-0", { node: "node-1" })).json.ips[0].address;
    expect((await ls(conf))[0]).toMatchObject({ kind: "sticky", podName: "db-0" });

    // Scale down: the pod is deleted, its address stays held for the name.
    expect((await del(conf, "c-db0-a", "db-0")).exitCode).toBe(0);
    await api.deletePod("default", "db-0");
    expect((await ls(conf)).map((a) => [a.ip, a.kind])).toEqual([[first.split("/")[0], "sticky"]]);

    // Meanwhile other pods take every other address, and one more finds the pool full.
    for (const i of [1, 2, 3]) await api.setPod(makePod({ name: `other-${i}` }));
    expect((await add(conf, "c-o1", "other-1")).exitCode).toBe(0);
    expect((await add(conf, "c-o2", "other-2")).exitCode).toBe(0);
    expect((await add(conf, "c-o3", "other-3")).json.code).toBe(100);

    // Scale up: a new db-0 (new UID, new container, another node) gets its address back.
    await api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    const again = await add(conf, "c-db0-b", "db-0", { node: "node-2" });
    expect(again.json.ips[0].address).toBe(first);
    expect((await ls(conf)).find((a) => a.podName === "db-0")).toMatchObject({ containerID: "c-db0-b", node: "node-2", kind: "sticky" });
  });

  test("a re-created StatefulSet pod whose old sandbox never ran DEL takes its address over", async () => {
    const conf = netConf({ rangeStart: "10.188.2.10", rangeEnd: "10.188.2.20" });
    const sts = await api.setStatefulSet(makeStatefulSet({ name: "web" }));
    await api.setPod(makePod({ name: "web-0", ownerStatefulSet: sts }));
    const first = (await add(conf, "c-web0-a", "web-0", { node: "lost-node" })).json.ips[0].address;
    await api.setPod(makePod({ name: "web-0", ownerStatefulSet: sts })); // new UID: the old pod is gone
    const again = await add(conf, "c-web0-b", "web-0", { node: "node-2" });
    expect(again.json.ips[0].address).toBe(first);
    expect((await ls(conf)).map((a) => a.containerID)).toEqual(["c-web0-b"]);
  });

  test("the embedded store parks and hands back sticky addresses the same way", async () => {
    const conf = netConf({ rangeStart: "10.188.4.10", rangeEnd: "10.188.4.11" });
    const { etcdConfig: _e, ...ipam } = conf.ipam;
    const fileConf = { ...conf, ipam: { ...ipam, dataDir: join(dir.path, `file-${conf.name}`) } };
    const sts = makeStatefulSet({ name: "kv" });
    await api.setPod(makePod({ name: "kv-0", ownerStatefulSet: sts }));
    const first = (await add(fileConf, "c-kv0-a", "kv-0")).json.ips[0].address;
    await del(fileConf, "c-kv0-a", "kv-0");
    expect((await ls(fileConf)).map((a) => [a.podName, a.kind])).toEqual([["kv-0", "sticky"]]);
    await api.setPod(makePod({ name: "other-kv" }));
    expect((await add(fileConf, "c-other", "other-kv")).exitCode).toBe(0);
    await api.setPod(makePod({ name: "third-kv" }));
    expect((await add(fileConf, "c-third", "third-kv")).json.code).toBe(100);
    await api.setPod(makePod({ name: "kv-0", ownerStatefulSet: sts }));
    expect((await add(fileConf, "c-kv0-b", "kv-0")).json.ips[0].address).toBe(first);
  });

  test("the embedded store: a takeover moves the owner index, so only the new container's DEL parks the address", async () => {
    const conf = netConf({ rangeStart: "10.188.5.10", rangeEnd: "10.188.5.20" });
    const { etcdConfig: _e, ...ipam } = conf.ipam;
    const fileConf = { ...conf, ipam: { ...ipam, dataDir: join(dir.path, `file-takeover-${conf.name}`) } };
    const sts = makeStatefulSet({ name: "fs" });
    await api.setPod(makePod({ name: "fs-0", ownerStatefulSet: sts }));
    const first = (await add(fileConf, "c-fs0-a", "fs-0")).json.ips[0].address;
    await api.setPod(makePod({ name: "fs-0", ownerStatefulSet: sts })); // new UID: the old pod is gone, its DEL never ran
    expect((await add(fileConf, "c-fs0-b", "fs-0")).json.ips[0].address).toBe(first);
    expect((await ls(fileConf)).map((a) => a.containerID)).toEqual(["c-fs0-b"]);
    const owners = () => readdirSync(join(fileConf.ipam.dataDir, fileConf.name, "owners"));
    expect(owners()).toEqual(["c-fs0-b:eth0:0abc050a"]);
    // The old container's late DEL holds nothing any more and changes nothing.
    expect((await del(fileConf, "c-fs0-a", "fs-0")).exitCode).toBe(0);
    expect(owners()).toEqual(["c-fs0-b:eth0:0abc050a"]);
    // The new one's DEL parks the address: kept for the pod's name, held by no container.
    expect((await del(fileConf, "c-fs0-b", "fs-0")).exitCode).toBe(0);
    expect(owners()).toEqual([]);
    expect((await ls(fileConf)).map((a) => [a.ip, a.podName, a.kind])).toEqual([[first.split("/")[0], "fs-0", "sticky"]]);
  });

  test("the CNI GC verb parks a sticky address the runtime no longer lists instead of releasing it", async () => {
    const conf = { ...netConf(), cniVersion: "1.1.0" };
    const sts = makeStatefulSet({ name: "gcsts" });
    await api.setPod(makePod({ name: "gcsts-0", ownerStatefulSet: sts }));
    await api.setPod(makePod({ name: "plain" }));
    const kept = (await add(conf, "c-gcsts", "gcsts-0")).json.ips[0].address.split("/")[0];
    await add(conf, "c-plain", "plain");
    const gc = await runPlugin({ ...conf, "cni.dev/valid-attachments": [] }, {
      command: "GC",
      env: { KUBE_IPAM_NODE_NAME: "node-1" },
    });
    expect(gc.exitCode).toBe(0);
    expect((await ls(conf)).map((a) => [a.ip, a.podName, a.kind])).toEqual([[kept, "gcsts-0", "sticky"]]);
    await api.setPod(makePod({ name: "gcsts-0", ownerStatefulSet: sts }));
    expect((await add(conf, "c-gcsts-2", "gcsts-0")).json.ips[0].address.split("/")[0]).toBe(kept);
  });

  test('kube-ipam.sticky: "false" opts a StatefulSet pod out; "true" opts any pod in', async () => {
    const conf = netConf();
    const sts = makeStatefulSet({ name: "cache" });
    await api.setPod(makePod({ name: "cache-0", ownerStatefulSet: sts, annotations: { "kube-ipam.sticky": "false" } }));
    await api.setPod(makePod({ name: "pinned", annotations: { "kube-ipam.sticky": "true" } }));
    await add(conf, "c-cache", "cache-0");
    await add(conf, "c-pinned", "pinned");
    await del(conf, "c-cache", "cache-0");
    await del(conf, "c-pinned", "pinned");
    expect((await ls(conf)).map((a) => [a.podName, a.kind])).toEqual([["pinned", "sticky"]]);
  });
});

describe("reserved addresses", () => {
  test("reserve, the in-use-then-released case of seed 003, and unreserve", async () => {
    const conf = netConf({ rangeStart: "10.188.3.10", rangeEnd: "10.188.3.13" });
    const confPath = writeConf(conf);
    await api.setPod(makePod({ name: "user" }));
    const inUse = (await add(conf, "c-user", "user")).json.ips[0].address.split("/")[0];

    const reserve = await runCli(["reserve", "test-ippool", inUse, "10.188.3.12-10.188.3.13", "--conf", confPath]);
    expect(reserve.exitCode).toBe(0);
    expect(reserve.stdout).toContain(`Reservation "test-ippool" created: ${inUse}, 10.188.3.12-10.188.3.13`);
    expect(reserve.stdout).toContain(`${inUse} (network ${conf.name}) is held by pod default/user`);
    expect((await ls(conf)).map((a) => a.ip)).toEqual([inUse]); // the holder keeps it

    const listed = await runCli(["reserved", "--conf", confPath, "-o", "json"]);
    expect(listed.json).toMatchObject([{ name: "test-ippool", entries: [inUse, "10.188.3.12-10.188.3.13"] }]);

    // Released: not handed out again while reserved. Only the one unreserved address is left.
    await del(conf, "c-user", "user");
    const free = ["10.188.3.10", "10.188.3.11", "10.188.3.12", "10.188.3.13"].filter((a) => a !== inUse && a !== "10.188.3.12" && a !== "10.188.3.13");
    for (const name of ["d1", "d2"]) await api.setPod(makePod({ name }));
    expect((await add(conf, "c-d1", "d1")).json.ips[0].address).toBe(`${free[0]}/16`);
    expect((await add(conf, "c-d2", "d2")).json.code).toBe(100);

    await api.setPod(makePod({ name: "wants-reserved", annotations: { "kube-ipam.ip": "10.188.3.12" } }));
    const refused = await add(conf, "c-wr", "wants-reserved");
    expect(refused.json.code).toBe(102);
    expect(refused.json.msg).toBe('Address "10.188.3.12" is reserved by "test-ippool": choose another address or run "kube-ipam unreserve test-ippool"');

    expect((await runCli(["unreserve", "test-ippool", "--conf", confPath])).exitCode).toBe(0);
    expect((await add(conf, "c-d2", "d2")).exitCode).toBe(0);
    expect((await runCli(["unreserve", "test-ippool", "--conf", confPath])).exitCode).toBe(1);
  });

  test("a huge IPv6 reservation is stored as a range, and requested addresses in it are refused", async () => {
    const conf = netConf({ subnet: "fd00:77::/64", rangeStart: undefined, rangeEnd: undefined, gateway: undefined });
    const confPath = writeConf(conf);
    expect((await runCli(["reserve", "v6-block", "fd00:77::/64", "--conf", confPath])).exitCode).toBe(0);
    const listed = await runCli(["reserved", "--conf", confPath, "-o", "json"]);
    expect(listed.json.find((r: any) => r.name === "v6-block").entries).toEqual(["fd00:77::/64"]);
    const r = await runPlugin(conf, { command: "ADD", containerID: "v6", args: "IP=fd00:77::5" });
    expect(r.json.code).toBe(102);
    expect((await runPlugin(conf, { command: "ADD", containerID: "v6dyn" })).json.code).toBe(100);
    await runCli(["unreserve", "v6-block", "--conf", confPath]);
  });
});
