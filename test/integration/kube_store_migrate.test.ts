// `kube-ipam migrate --from etcd --to kubernetes` and back (src/ipam/move.ts, src/cli/migrate.ts), with the
// built binary, between a real etcd (kube-ipam's own store) and a real kube-apiserver with kube-ipam's custom
// resources. One config holds both stores (etcdConfig and kubeConfig; datastore names the active one): the
// plugin's with the plugin's ServiceAccount kubeconfig, the operator's (migrate, which writes reservations) with the
// admin's. What a user relies on: every allocation and reservation is copied exactly; a second run finds all
// present; an address someone else holds in the target is reported, never overwritten; the source is frozen
// (no new address handed out there) and, with plugins allocating on the source during the move, no address
// ends up held by two containers across the two stores once the nodes use the target.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EtcdServer, startEtcd } from "../support/etcd.ts";
import { makePod, makeStatefulSet, PLUGIN_USER } from "../support/kube_apiserver.ts";
import { allocationObjects, asAdmin, cli, ipOf, type KubeConf, kubeNetConf, ls, useKubeDatastore, writeConf } from "../support/kube_datastore.ts";
import { BINARY, type CniReply, mapLimit, runCli, runPlugin, spawnPlugin } from "../support/plugin.ts";

const env = useKubeDatastore();
let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
}, 60_000);
afterAll(async () => {
  await etcd?.stop();
});

let nets = 0;

/** Network `name` configured on both stores, `datastore` the active one, as the plugin runs it (its ServiceAccount). */
function both(datastore: "etcd" | "kubernetes", ipam: Record<string, unknown>, name = `mv${process.pid}x${nets++}`): KubeConf {
  // migrate waits one timeoutSeconds (and a second) after freezing the source.
  return kubeNetConf(env, { datastore, etcdConfig: { etcdURL: etcd.endpoint, etcdPrefix: `/mv-${process.pid}-${name}` }, timeoutSeconds: 1, ...ipam }, name);
}

const on = (conf: KubeConf, datastore: "etcd" | "kubernetes"): KubeConf => ({ ...conf, ipam: { ...conf.ipam, datastore } });
const podArgs = (pod: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`;

function add(conf: unknown, id: string, opts: { pod?: string; ip?: string; node?: string } = {}): Promise<CniReply> {
  const args = [opts.pod && podArgs(opts.pod), opts.ip && `IP=${opts.ip}`].filter(Boolean).join(";");
  return runPlugin(conf, { command: "ADD", containerID: id, ...(args && { args }), env: { KUBE_IPAM_NODE_NAME: opts.node ?? "node-1" } });
}

async function mustAdd(conf: unknown, id: string, opts: { pod?: string; ip?: string; node?: string } = {}): Promise<string> {
  const r = await add(conf, id, opts);
  if (r.exitCode !== 0) throw new Error(`ADD ${id} failed: ${r.stdout}${r.stderr}`);
  return ipOf(r);
}

/** `kube-ipam migrate --from from --to to --conf FILE -o json` as the operator; the reply and its JSON report. */
async function migrate(conf: KubeConf, from: string, to: string, ...flags: string[]) {
  return runCli(["migrate", "--from", from, "--to", to, "--conf", writeConf(env, asAdmin(env, conf)), "-o", "json", ...flags]);
}

/** ls of a store, the records as compared across stores. */
const records = async (conf: KubeConf) => (await ls(env, conf)).map((a) => JSON.stringify(a)).sort();

describe("migrate --from etcd --to kubernetes", () => {
  test("copies every allocation and the reservations; a second run finds all present; the nodes then use the target", async () => {
    const conf = both("etcd", { subnet: "10.95.0.0/24", rangeStart: "10.95.0.10", rangeEnd: "10.95.0.60" });
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "mvdb" }));
    await env.api.setPod(makePod({ name: "mvdb-0", ownerStatefulSet: sts }));
    await env.api.setPod(makePod({ name: "mvdb-1", ownerStatefulSet: sts }));
    await env.api.setPod(makePod({ name: "fixed-pod", annotations: { "kube-ipam.ip": "10.95.0.200" } }));
    for (let i = 0; i < 5; i++) await mustAdd(conf, `dyn-${i}`, { node: `node-${i % 2}` });
    const sticky = await mustAdd(conf, "c-mvdb-0", { pod: "mvdb-0" });
    const parked = await mustAdd(conf, "c-mvdb-1", { pod: "mvdb-1" });
    expect((await runPlugin(conf, { command: "DEL", containerID: "c-mvdb-1", args: podArgs("mvdb-1") })).exitCode).toBe(0);
    expect(await mustAdd(conf, "c-fixed", { pod: "fixed-pod" })).toBe("10.95.0.200");
    await mustAdd(conf, "c-requested", { ip: "10.95.0.50" });
    await cli("reserve", "printers", "10.95.0.55-10.95.0.57", "--conf", writeConf(env, conf));
    const source = await records(conf);
    expect(source.length).toBe(9);

    // A dry run says what would move and writes nothing: no freeze, no object.
    const dry = await migrate(conf, "etcd", "kubernetes", "--dry-run");
    expect(dry.exitCode).toBe(0);
    expect(dry.json.entries.map((e: any) => e.outcome)).toEqual(Array(9).fill("moved"));
    expect(await allocationObjects(env.api, conf.name)).toEqual([]);
    expect((await add(conf, "probe")).exitCode).toBe(0);
    expect((await runPlugin(conf, { command: "DEL", containerID: "probe" })).exitCode).toBe(0);

    const first = await migrate(conf, "etcd", "kubernetes");
    expect({ exit: first.exitCode, stderr: first.stderr }).toEqual({ exit: 0, stderr: "" });
    expect(first.json).toMatchObject({ dryRun: false, network: conf.name, freeze: `kube-ipam-moved-${conf.name}`, staleReleased: 0,
      reservations: [{ name: "printers", outcome: "moved" }] });
    expect(first.json.entries.map((e: any) => e.outcome)).toEqual(Array(9).fill("moved"));
    expect(first.json.entries.find((e: any) => e.ip === "10.95.0.200").detail).toBe("outside the configured ranges");

    // The Kubernetes store holds the very same records, one IPAllocation each, and the operator's reservation.
    const target = on(conf, "kubernetes");
    expect(await records(target)).toEqual(source);
    expect((await allocationObjects(env.api, conf.name)).length).toBe(9);
    expect((await cli("show", parked, "--conf", writeConf(env, target), "-o", "json")).json.held).toMatchObject({ podName: "mvdb-1", kind: "sticky" });
    expect((await cli("show", parked, "--conf", writeConf(env, target), "-o", "json")).json.held.parkedAt).toEqual(expect.any(String));
    expect((await cli("reserved", "--conf", writeConf(env, target), "-o", "json")).json).toMatchObject([{ name: "printers", entries: ["10.95.0.55-10.95.0.57"] }]);

    const second = await migrate(conf, "etcd", "kubernetes");
    expect(second.exitCode).toBe(0);
    expect(second.json.entries.map((e: any) => e.outcome)).toEqual(Array(9).fill("present"));
    expect(second.json.reservations).toEqual([{ name: "printers", outcome: "present" }]);
    expect(await records(target)).toEqual(source);

    // The switch: the nodes' config names the Kubernetes store. Their DELs release there, sticky pods get
    // their parked address back, new pods get addresses nobody holds.
    expect((await runPlugin(target, { command: "DEL", containerID: "dyn-0" })).exitCode).toBe(0);
    expect((await ls(env, target)).some((a) => a.containerID === "dyn-0")).toBe(false);
    await env.api.setPod(makePod({ name: "mvdb-1", ownerStatefulSet: sts }));
    expect(await mustAdd(target, "c-mvdb-1-b", { pod: "mvdb-1" })).toBe(parked);
    expect(await mustAdd(target, "c-mvdb-0", { pod: "mvdb-0" })).toBe(sticky); // a retried ADD of a moved container
    const fresh = await mustAdd(target, "newcomer");
    expect(source.some((r) => r.includes(`"ip":"${fresh}"`))).toBe(false);
    expect(["10.95.0.55", "10.95.0.56", "10.95.0.57"]).not.toContain(fresh);
  }, 60_000);

  test("the source is frozen: the reservation covers its ranges, new ADDs there get code 100, DEL there still works", async () => {
    const conf = both("etcd", { subnet: "10.95.1.0/24", rangeStart: "10.95.1.10", rangeEnd: "10.95.1.20" });
    await mustAdd(conf, "before");
    expect((await migrate(conf, "etcd", "kubernetes")).exitCode).toBe(0);
    const freeze = (await cli("reserved", "--conf", writeConf(env, conf), "-o", "json")).json.find((r: any) => r.name === `kube-ipam-moved-${conf.name}`);
    expect(freeze.entries).toEqual(["10.95.1.10-10.95.1.20"]);
    const refused = await add(conf, "after");
    expect({ exit: refused.exitCode, code: refused.json?.code }).toEqual({ exit: 1, code: 100 });
    // The freeze is not copied: the target serves the network.
    expect((await cli("reserved", "--conf", writeConf(env, on(conf, "kubernetes")), "-o", "json")).json
      .some((r: any) => r.name.startsWith("kube-ipam-moved-"))).toBe(false);
    expect((await add(on(conf, "kubernetes"), "after")).exitCode).toBe(0);
    // A pod deleted meanwhile on a node still on the source: its DEL is not refused.
    expect((await runPlugin(conf, { command: "DEL", containerID: "before" })).exitCode).toBe(0);
  }, 30_000);

  test("an address the target holds for another container is a conflict: exit 1, the list on stdout, nothing overwritten, the rest moved", async () => {
    const conf = both("etcd", { subnet: "10.95.2.0/24", rangeStart: "10.95.2.10", rangeEnd: "10.95.2.30" });
    const target = on(conf, "kubernetes");
    await mustAdd(conf, "owner", { ip: "10.95.2.15" });
    await mustAdd(conf, "other", { ip: "10.95.2.16" });
    await mustAdd(target, "intruder", { ip: "10.95.2.15" }); // someone already uses the Kubernetes store for the network
    const r = await migrate(conf, "etcd", "kubernetes");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`kube-ipam: 1 of 2 allocations of network "${conf.name}" could not be placed in Kubernetes API "${env.api.url}" (see the list); the others were\n`);
    expect(r.json.entries.map((e: any) => [e.ip, e.containerID, e.outcome, e.detail ?? ""])).toEqual([
      ["10.95.2.15", "owner", "conflict", "held there by container intruder, requested"],
      ["10.95.2.16", "other", "moved", ""],
    ]);
    expect((await ls(env, target)).map((a) => [a.ip, a.containerID])).toEqual([["10.95.2.15", "intruder"], ["10.95.2.16", "other"]]);
    // The table form says the same.
    const table = await runCli(["migrate", "--from", "etcd", "--to", "kubernetes", "--conf", writeConf(env, asAdmin(env, conf))]);
    expect(table.exitCode).toBe(1);
    expect(table.stdout).toContain("conflicts 1");
    expect(table.stdout).toMatch(/10\.95\.2\.15\s+owner\s+conflict\s+held there by container intruder/);
  }, 30_000);

  test("run as the plugin's ServiceAccount, which may not write reservations: refused naming the verb and resource, the source not frozen", async () => {
    const conf = both("etcd", { subnet: "10.95.3.0/24", rangeStart: "10.95.3.10", rangeEnd: "10.95.3.20" });
    await mustAdd(conf, "c1");
    await cli("reserve", "printers", "10.95.3.20", "--conf", writeConf(env, conf));
    const r = await runCli(["migrate", "--from", "etcd", "--to", "kubernetes", "--conf", writeConf(env, conf)]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`User "${PLUGIN_USER}" cannot create resource "ipreservations"`);
    // Nothing happened: the source still hands out addresses, the target holds nothing of the network.
    const names = (await cli("reserved", "--conf", writeConf(env, conf), "-o", "json")).json.map((x: any) => x.name);
    expect(names).toEqual(["printers"]);
    expect((await add(conf, "c2")).exitCode).toBe(0);
    expect(await allocationObjects(env.api, conf.name)).toEqual([]);
    // Moving back the other way, the freeze of the Kubernetes store is the write refused first.
    const back = await runCli(["migrate", "--from", "kubernetes", "--to", "etcd", "--conf", writeConf(env, on(conf, "kubernetes"))]);
    expect(back.exitCode).toBe(1);
    expect(back.stderr).toContain(`cannot create resource "ipreservations"`);
  }, 30_000);
});

describe("migrate --from kubernetes --to etcd (back)", () => {
  test("the etcd copies give way to the Kubernetes store's records, the rest are released, etcd's freeze is lifted, Kubernetes is frozen", async () => {
    // A network name that is no DNS label: its objects' names are shortened forms, the exact name kept inside.
    const conf = both("etcd", { subnet: "10.96.0.0/24", rangeStart: "10.96.0.10", rangeEnd: "10.96.0.40" }, `Mv_Back.${process.pid}`);
    const target = on(conf, "kubernetes");
    for (let i = 0; i < 4; i++) await mustAdd(conf, `c${i}`, { ip: `10.96.0.1${i}` });
    expect((await migrate(conf, "etcd", "kubernetes")).exitCode).toBe(0);
    // On the Kubernetes store from now on: pods come and go. c0's address goes to k1, c1's to nobody.
    expect((await runPlugin(target, { command: "DEL", containerID: "c0" })).exitCode).toBe(0);
    expect((await runPlugin(target, { command: "DEL", containerID: "c1" })).exitCode).toBe(0);
    await mustAdd(target, "k1", { ip: "10.96.0.10" });
    await mustAdd(target, "k2", { ip: "10.96.0.30" });
    const now = await records(target);

    const back = await migrate(target, "kubernetes", "etcd");
    expect({ exit: back.exitCode, stderr: back.stderr }).toEqual({ exit: 0, stderr: "" });
    // etcd's copy of c1 is released; that of c0 replaced by k1's record; c2 and c3 are there already.
    expect(back.json.staleReleased).toBe(1);
    expect(back.json.entries.map((e: any) => [e.ip, e.containerID, e.outcome, e.detail ?? ""])).toEqual([
      ["10.96.0.10", "k1", "moved", "replaced the stale copy of an earlier move"],
      ["10.96.0.12", "c2", "present", ""],
      ["10.96.0.13", "c3", "present", ""],
      ["10.96.0.30", "k2", "moved", ""],
    ]);
    expect(await records(conf)).toEqual(now);
    // etcd serves again; the Kubernetes store is frozen.
    const names = (await cli("reserved", "--conf", writeConf(env, conf), "-o", "json")).json.map((r: any) => r.name);
    expect(names).not.toContain(`kube-ipam-moved-${conf.name}`);
    expect((await add(conf, "e1")).exitCode).toBe(0);
    expect((await add(target, "k3")).json?.code).toBe(100);
    const kubeNames = (await cli("reserved", "--conf", writeConf(env, target), "-o", "json")).json.map((r: any) => r.name);
    expect(kubeNames).toContain(`kube-ipam-moved-${conf.name}`);
  }, 60_000);
});

describe("plugins allocating on the source during the move", () => {
  test("every address answered on etcd before the freeze is in the Kubernetes store; after the switch no address has two holders", async () => {
    const conf = both("etcd", { subnet: "10.97.0.0/24", rangeStart: "10.97.0.10", rangeEnd: "10.97.0.129" });
    const target = on(conf, "kubernetes");
    const answered = new Map<string, string>(); // container -> address, from either store
    for (let i = 0; i < 20; i++) answered.set(`pre-${i}`, await mustAdd(conf, `pre-${i}`, { node: `node-${i % 4}` }));

    const mover = Bun.spawn([BINARY, "migrate", "--from", "etcd", "--to", "kubernetes",
      "--conf", writeConf(env, asAdmin(env, conf)), "-o", "json"], { stdout: "pipe", stderr: "pipe" });
    let moving = true;
    const done = mover.exited.then(() => (moving = false));
    // Nodes keep adding on the source while the move runs; what is refused the kubelet tries again (the same
    // container) until the node's config names the target. At most 60 new containers: the pool keeps room.
    const refused = new Set<string>();
    let refusals = 0;
    let n = 0;
    const workers = Array.from({ length: 4 }, async (_, w) => {
      let id = `during-${w}-${n++}`;
      while (moving && n < 60) {
        const proc = spawnPlugin(conf, { command: "ADD", containerID: id, ifName: "eth0", env: { KUBE_IPAM_NODE_NAME: `node-${w}` } });
        const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        const reply = out.trim() ? JSON.parse(out) : undefined;
        if (code === 0) {
          answered.set(id, reply.ips[0].address.split("/")[0]);
          refused.delete(id);
          id = `during-${w}-${n++}`;
          continue;
        }
        expect(reply?.code).toBe(100); // frozen: "no free address", never anything else
        refused.add(id);
        refusals++;
        await Bun.sleep(100); // the kubelet's back-off between sandbox attempts, shortened
      }
    });
    await done;
    await Promise.all(workers);
    const report = JSON.parse(await new Response(mover.stdout).text());
    expect({ exit: mover.exitCode, stderr: await new Response(mover.stderr).text() }).toEqual({ exit: 0, stderr: "" });
    expect(refusals).toBeGreaterThan(0); // the freeze was felt
    expect(answered.size).toBeGreaterThan(20); // and addresses were handed out on the source during the move

    // Every address the source answered is in the target with its holder.
    const moved = new Map((await ls(env, target)).map((a) => [a.containerID, a.ip]));
    for (const [id, ip] of answered) expect(`${id} ${moved.get(id)}`).toBe(`${id} ${ip}`);
    expect(report.entries.filter((e: any) => e.outcome !== "moved")).toEqual([]);

    // The switch: the refused ADDs are retried on the target and succeed, with addresses nobody was answered.
    const retried = await mapLimit([...refused], 6, async (id) => answered.set(id, await mustAdd(target, id, { node: "node-9" })));
    expect(retried.length).toBe(refused.size);
    const holders = new Map<string, string[]>();
    for (const [id, ip] of answered) holders.set(ip, [...(holders.get(ip) ?? []), id]);
    expect([...holders].filter(([, ids]) => ids.length > 1)).toEqual([]);
    const final = await ls(env, target);
    expect(final.length).toBe(answered.size);
    for (const a of final) expect(`${a.containerID} ${a.ip}`).toBe(`${a.containerID} ${answered.get(a.containerID)}`);
  }, 90_000);
});
