// Kubernetes-aware addresses and the CNI verbs on the Kubernetes store (ipam.datastore "kubernetes"), as
// k8s_addresses.test.ts and cni_protocol.test.ts have them on etcd and the embedded store: a real
// kube-apiserver with kube-ipam's custom resources, the plugin run as a runtime runs it with the
// plugin's ServiceAccount token. Sticky StatefulSet addresses (kept across re-creation, parked on DEL, released by gc
// once the StatefulSet is gone), takeover of a fixed address from a holder that vanished, CHECK, STATUS and
// the GC verb.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { freePorts } from "../support/etcd.ts";
import { makePod, makeStatefulSet } from "../support/kube_apiserver.ts";
import { allocationObjects, asController, cli, ipOf, type KubeConf, kubeNetConf, ls, useKubeDatastore, writeConf } from "../support/kube_datastore.ts";
import { type CniReply, runCli, runPlugin } from "../support/plugin.ts";

const env = useKubeDatastore();

const podArgs = (pod: string, ns = "default") => `K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=x`;

function add(conf: unknown, containerID: string, pod: string | undefined, opts: { node?: string; ifName?: string } = {}) {
  return runPlugin(conf, {
    command: "ADD", containerID, ifName: opts.ifName ?? "eth0",
    ...(pod !== undefined && { args: podArgs(pod) }),
    env: { KUBE_IPAM_NODE_NAME: opts.node ?? "node-1" },
  });
}

async function mustAdd(conf: unknown, containerID: string, pod: string | undefined, opts: { node?: string; ifName?: string } = {}) {
  const r = await add(conf, containerID, pod, opts);
  if (r.exitCode !== 0) throw new Error(`ADD ${containerID} failed: ${r.stdout}${r.stderr}`);
  return ipOf(r);
}

function del(conf: unknown, containerID: string, pod?: string, ifName = "eth0") {
  return runPlugin(conf, { command: "DEL", containerID, ifName, ...(pod !== undefined && { args: podArgs(pod) }) });
}

/** A failed verb: exit status 1 and the CNI error of `code` on stdout. */
function expectCniError(r: CniReply, code: number): void {
  expect({ exit: r.exitCode, code: r.json?.code }).toEqual({ exit: 1, code });
}

/** A verb that succeeds without a result (DEL, CHECK, GC, STATUS). */
function expectSilentSuccess(r: CniReply): void {
  expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 0, stdout: "" });
}

/** A pool of `n` addresses from 10.80.<third>.10 on. */
function pool(third: number, n: number, ipam: Record<string, unknown> = {}): KubeConf {
  return kubeNetConf(env, { subnet: "10.80.0.0/16", rangeStart: `10.80.${third}.10`, rangeEnd: `10.80.${third}.${10 + n - 1}`, ...ipam });
}

describe("sticky StatefulSet addresses", () => {
  test("kept across delete and re-create on a pool anyone else would take; parked on DEL; released by gc once the StatefulSet is gone", async () => {
    const conf = pool(1, 3);
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "db" }));
    await env.api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    const first = await mustAdd(conf, "c-db0-a", "db-0");
    expect((await ls(env, conf))[0]).toMatchObject({ ip: first, kind: "sticky", podName: "db-0", containerID: "c-db0-a" });

    // Scale down: DEL parks the address, kept for the pod name (no owner, no container index any more).
    expectSilentSuccess(await del(conf, "c-db0-a", "db-0"));
    await env.api.deletePod("default", "db-0");
    const [parked, ...none] = await allocationObjects(env.api, conf.name);
    expect(none).toEqual([]);
    expect(parked.spec).toMatchObject({ ip: first, kind: "sticky", podName: "db-0" });
    expect(parked.spec.parkedAt).toEqual(expect.any(String));
    expect(Object.keys(parked.metadata.labels).sort())
      .toEqual(["kube-ipam.io/block", "kube-ipam.io/network", "kube-ipam.io/node", "kube-ipam.io/sticky"]);

    // Meanwhile other pods take the two other addresses, and one more finds the pool full.
    for (const i of [1, 2, 3]) await env.api.setPod(makePod({ name: `other-${i}` }));
    const others = [await mustAdd(conf, "c-o1", "other-1"), await mustAdd(conf, "c-o2", "other-2")];
    expect(others).not.toContain(first);
    expectCniError(await add(conf, "c-o3", "other-3"), 100);

    // Scale up: a new db-0 (new UID, new container, another node) gets its address back.
    await env.api.setPod(makePod({ name: "db-0", ownerStatefulSet: sts }));
    expect(await mustAdd(conf, "c-db0-b", "db-0", { node: "node-2" })).toBe(first);
    expect((await ls(env, conf)).find((a) => a.ip === first)).toMatchObject({ containerID: "c-db0-b", node: "node-2", kind: "sticky", podName: "db-0" });

    // Parked again, the StatefulSet then deleted: gc releases it (and only it), naming why.
    expectSilentSuccess(await del(conf, "c-db0-b", "db-0"));
    await env.api.deletePod("default", "db-0");
    const path = writeConf(env, asController(env, conf)); // gc as the controller runs it
    const kept = await runCli(["gc", "--conf", path, "--grace", "0s"]);
    expect(kept.exitCode).toBe(0);
    expect(kept.stdout).toStartWith("No leaked addresses");
    await env.api.deleteStatefulSet("default", "db");
    const gc = await cli("gc", "--conf", path, "--grace", "0s");
    expect(gc.stdout).toContain(`released ${first} (network ${conf.name}) of pod default/db-0, container c-db0-b: StatefulSet "default/db" is gone`);
    expect((await ls(env, conf)).map((a) => a.ip).sort()).toEqual(others.sort());
    // The address is free again for anyone.
    await env.api.setPod(makePod({ name: "other-4" }));
    expect(await mustAdd(conf, "c-o4", "other-4")).toBe(first);
  });

  test("a re-created StatefulSet pod whose old sandbox never ran DEL takes its address over; the old DEL then releases nothing", async () => {
    const conf = pool(2, 10);
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "web" }));
    await env.api.setPod(makePod({ name: "web-0", ownerStatefulSet: sts }));
    const first = await mustAdd(conf, "c-web0-a", "web-0", { node: "lost-node" });
    await env.api.setPod(makePod({ name: "web-0", ownerStatefulSet: sts })); // new UID: the old pod is gone
    expect(await mustAdd(conf, "c-web0-b", "web-0", { node: "node-2" })).toBe(first);
    expect((await ls(env, conf)).map((a) => [a.ip, a.containerID, a.node])).toEqual([[first, "c-web0-b", "node-2"]]);
    // The old sandbox's late DEL holds nothing any more: the address stays the new container's, not parked.
    expectSilentSuccess(await del(conf, "c-web0-a", "web-0"));
    const [obj] = await allocationObjects(env.api, conf.name);
    expect(obj.spec).toMatchObject({ containerID: "c-web0-b", kind: "sticky" });
    expect(obj.spec.parkedAt ?? null).toBeNull();
  });

  test("the CNI GC verb parks a sticky address the runtime no longer lists instead of releasing it", async () => {
    const conf = { ...pool(3, 10), cniVersion: "1.1.0" };
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "gcsts" }));
    await env.api.setPod(makePod({ name: "gcsts-0", ownerStatefulSet: sts }));
    await env.api.setPod(makePod({ name: "plain" }));
    const kept = await mustAdd(conf, "c-gcsts", "gcsts-0");
    await mustAdd(conf, "c-plain", "plain");
    expectSilentSuccess(await runPlugin({ ...conf, "cni.dev/valid-attachments": [] }, { command: "GC", env: { KUBE_IPAM_NODE_NAME: "node-1" } }));
    const left = await ls(env, conf);
    expect(left.map((a) => [a.ip, a.podName, a.kind])).toEqual([[kept, "gcsts-0", "sticky"]]);
    const show = await cli("show", kept, "--conf", writeConf(env, conf), "-o", "json");
    expect(show.json.held.parkedAt).toEqual(expect.any(String));
    await env.api.setPod(makePod({ name: "gcsts-0", ownerStatefulSet: sts }));
    expect(await mustAdd(conf, "c-gcsts-2", "gcsts-0")).toBe(kept);
  });
});

describe("fixed addresses from annotations", () => {
  test("takeover when the holder vanished without DEL; the old sandbox's late DEL releases nothing", async () => {
    const conf = pool(4, 10);
    const fixed = "10.80.4.200"; // outside the dynamic range: fixed addresses need only be in the subnet
    await env.api.setPod(makePod({ name: "lost", annotations: { "kube-ipam.ip": fixed } }));
    expect(await mustAdd(conf, "c-lost", "lost", { node: "dead-node" })).toBe(fixed);
    // While the holder's pod lives, another pod asking for the address is refused, naming the holder.
    await env.api.setPod(makePod({ name: "rival", annotations: { "kube-ipam.ip": fixed } }));
    const refused = await add(conf, "c-rival", "rival");
    expectCniError(refused, 101);
    expect(refused.json.msg).toContain("default/lost");

    await env.api.deletePod("default", "lost"); // the node is lost: the API forgets the pod, no DEL ever ran
    await env.api.setPod(makePod({ name: "replacement", annotations: { "kube-ipam.ip": fixed } }));
    expect(await mustAdd(conf, "c-new", "replacement", { node: "node-2" })).toBe(fixed);
    expect(await ls(env, conf)).toMatchObject([{ ip: fixed, containerID: "c-new", podName: "replacement", node: "node-2", kind: "fixed" }]);
    expectSilentSuccess(await del(conf, "c-lost", "lost"));
    expect((await ls(env, conf)).map((a) => a.containerID)).toEqual(["c-new"]);
    expectSilentSuccess(await del(conf, "c-new", "replacement"));
    expect(await allocationObjects(env.api, conf.name)).toEqual([]);
  });

  test("concurrent requests for one fixed address from eight pods: exactly one wins, the others are refused", async () => {
    const conf = pool(5, 10);
    const fixed = "10.80.5.222";
    const names = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    for (const name of names) await env.api.setPod(makePod({ name, annotations: { "kube-ipam.ip": fixed } }));
    const replies = await Promise.all(names.map((name, i) => add(conf, `c-${name}`, name, { node: `node-${i}` })));
    const won = replies.filter((r) => r.exitCode === 0);
    expect(won.map(ipOf)).toEqual([fixed]);
    expect(replies.filter((r) => r.exitCode !== 0).map((r) => r.json?.code)).toEqual(Array(7).fill(101));
    expect((await allocationObjects(env.api, conf.name)).length).toBe(1);
  });
});

describe("CHECK", () => {
  test("succeeds after ADD, fails after DEL, for an address not held and for another interface", async () => {
    const conf = pool(6, 10);
    const r = await add(conf, "chk", undefined);
    expect(r.exitCode).toBe(0);
    const withPrev = { ...conf, prevResult: r.json };
    expectSilentSuccess(await runPlugin(withPrev, { command: "CHECK", containerID: "chk" }));
    const notHeld = { ...conf, prevResult: { cniVersion: "1.0.0", ips: [{ address: "10.80.6.77/16" }] } };
    const wrong = await runPlugin(notHeld, { command: "CHECK", containerID: "chk" });
    expectCniError(wrong, 3);
    expect(wrong.json.msg).toBe(`Address "10.80.6.77" of prevResult is not held by container "chk" interface "eth0" in network "${conf.name}"`);
    const other = await runPlugin(conf, { command: "CHECK", containerID: "chk", ifName: "net1" });
    expectCniError(other, 3);
    expect(other.json.msg).toBe(`Container "chk" interface "net1" holds no address in network "${conf.name}"`);
    expectSilentSuccess(await del(conf, "chk"));
    const after = await runPlugin(withPrev, { command: "CHECK", containerID: "chk" });
    expectCniError(after, 3);
    expect(after.json.msg).toBe(`Container "chk" interface "eth0" holds no address in network "${conf.name}"`);
  });
});

describe("STATUS", () => {
  test("ready with room; code 50 naming the range set when the pool is full; room again after DEL", async () => {
    const conf = { ...kubeNetConf(env, { subnet: "10.81.0.0/30" }), cniVersion: "1.1.0" };
    expectSilentSuccess(await runPlugin(conf, { command: "STATUS" }));
    // A /30 leaves one address: .1 is the gateway, .3 the broadcast.
    expect((await add(conf, "only", undefined)).exitCode).toBe(0);
    const full = await runPlugin(conf, { command: "STATUS" });
    expectCniError(full, 50);
    expect(full.json.msg).toBe(`No free address in network "${conf.name}" range set 10.81.0.0/30 (10.81.0.1-10.81.0.2)`);
    expectSilentSuccess(await del(conf, "only"));
    expectSilentSuccess(await runPlugin(conf, { command: "STATUS" }));
  });

  test("an API that refuses connections, or lacks kube-ipam's resources' rights: STATUS fails naming the API", async () => {
    const down = `https://127.0.0.1:${freePorts(1)[0]}`;
    const conf = { ...kubeNetConf(env, { subnet: "10.81.1.0/24" }), cniVersion: "1.1.0" };
    const unreachable = { ...conf, ipam: { ...conf.ipam, kubeConfig: env.api.writeKubeconfig(join(env.dir.path, "kube-down"), "token", { server: down }) } };
    const r = await runPlugin(unreachable, { command: "STATUS" });
    expectCniError(r, 50);
    expect(r.json.msg).toContain(down);
    expect(r.json.msg).toContain("connection refused");
    const noRights = { ...conf, ipam: { ...conf.ipam, kubeConfig: env.api.writeKubeconfig(join(env.dir.path, "kube-norights"), "token", { token: env.api.noRightsToken }) } };
    const denied = await runPlugin(noRights, { command: "STATUS" });
    expectCniError(denied, 50);
    expect(denied.json.msg).toMatch(/cannot list resource "ipallocations"/);
  });
});

describe("GC", () => {
  test("releases exactly the unlisted allocations of this node and network; without the list it refuses (code 7)", async () => {
    const onA = { ...pool(7, 20, { nodeName: "node-a" }), cniVersion: "1.1.0" };
    const onB = { ...onA, ipam: { ...onA.ipam, nodeName: "node-b" } };
    const elsewhere = { ...pool(8, 20, { nodeName: "node-a" }), cniVersion: "1.1.0" };
    for (const [conf, id, ifName] of [[onA, "keep", "eth0"], [onA, "keep", "net1"], [onA, "stale", "eth0"], [onB, "other-node", "eth0"],
      [elsewhere, "other-net", "eth0"]] as const) {
      expect((await runPlugin(conf, { command: "ADD", containerID: id, ifName })).exitCode).toBe(0);
    }
    const refused = await runPlugin(onA, { command: "GC" });
    expectCniError(refused, 7);
    expect(refused.json.msg).toBe("Invalid cni.dev/valid-attachments: GC needs the list of valid attachments (CNI 1.1.0)");
    expect((await ls(env, onA)).length).toBe(4);

    const gc = { ...onA, "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }] };
    expectSilentSuccess(await runPlugin(gc, { command: "GC", omit: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] }));
    expect((await ls(env, onA)).map((a) => `${a.containerID}/${a.ifName}@${a.node}`).sort()).toEqual(["keep/eth0@node-a", "other-node/eth0@node-b"]);
    expect((await allocationObjects(env.api, onA.name)).length).toBe(2);
    expect((await ls(env, elsewhere)).map((a) => a.containerID)).toEqual(["other-net"]);
  });
});
