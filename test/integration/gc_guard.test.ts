// `kube-ipam gc --max-release`: a pod list that is suddenly nearly empty (the wrong cluster, a restored API
// server, lost RBAC rights) makes gc refuse the whole run and release nothing, in any network; an operator
// who means it raises the limit. Real etcd, the real binary, a real kube-apiserver.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePod } from "../support/kube_apiserver.ts";
import { etcdNetConf, mapLimit, runCli, runPlugin } from "../support/plugin.ts";
import { useCluster } from "../support/fixtures.ts";

const env = useCluster({ kubeApi: true });

let prefixes = 0;

/** Networks sharing one key prefix (so one gc run sees them all), each with its config file. */
function networks(names: readonly string[]) {
  const prefix = `/gc-guard-${process.pid}-${prefixes++}`;
  return names.map((name, i) => {
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, {
      subnet: `10.71.${prefixes * 8 + i}.0/24`, kubeConfig: env.kubeconfig, etcdConfig: { etcdURL: env.etcd.endpoint, etcdPrefix: prefix },
    }, `${name}-${prefixes}`);
    const path = join(env.dir.path, `${conf.name}.conf`);
    writeFileSync(path, JSON.stringify(conf));
    return { conf, path, name: conf.name };
  });
}

/** `n` pods, each with an address in `conf`'s network; returns the pod names. */
async function podsWithAddresses(conf: { name: string }, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${conf.name}-pod-${i}`);
  for (const name of names) await env.api.setPod(makePod({ name }));
  await mapLimit(names, 6, async (name) => {
    const r = await runPlugin(conf, { command: "ADD", containerID: `c-${name}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` });
    if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
  });
  return names;
}

async function ls(path: string): Promise<string[]> {
  const out = await runCli(["ls", "--conf", path, "-o", "json"]);
  if (out.exitCode !== 0) throw new Error(out.stderr);
  return out.json.map((a: { containerID: string }) => a.containerID).sort();
}

const gc = (path: string, ...flags: string[]) => runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig", env.controllerKubeconfig, ...flags]);

describe("kube-ipam gc --max-release", () => {
  test("a nearly empty pod list: refused in every network, nothing released; dry run and JSON show it; 100% releases", async () => {
    const [big, small] = networks(["big", "small"]) as [ReturnType<typeof networks>[0], ReturnType<typeof networks>[0]];
    const bigPods = await podsWithAddresses(big.conf, 12);
    const smallPods = await podsWithAddresses(small.conf, 3);
    // The API now shows 1 of big's 12 pods, and 2 of small's 3: small alone would be within the limit.
    for (const p of bigPods.slice(1)) await env.api.deletePod("default", p);
    await env.api.deletePod("default", smallPods[0]!);
    const before = { big: await ls(big.path), small: await ls(small.path) };

    const refused = await gc(big.path);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toBe(`kube-ipam: Refused: it would release more than --max-release 50% (network "${big.name}": 11 of 12 pod addresses), ` +
      "so it released nothing in any network. A pod list that is nearly empty usually means the wrong cluster, a restored API server " +
      "or missing RBAC rights: check them; if the pods are really gone, run again with --max-release 100% (or a number of addresses)\n");
    expect(refused.stdout.split("\n").filter((l) => l.startsWith("refused to release ")).length).toBe(12);
    expect({ big: await ls(big.path), small: await ls(small.path) }).toEqual(before);

    // A dry run lists what would go and exits as the real run would.
    const dry = await gc(big.path, "--dry-run");
    expect(dry.exitCode).toBe(1);
    expect(dry.stderr).toStartWith(`kube-ipam: The run would be refused: it would release more than --max-release 50% (network "${big.name}": 11 of 12`);
    const wouldRelease = dry.stdout.trim().split("\n");
    expect(wouldRelease.length).toBe(12);
    for (const line of wouldRelease) expect(line).toMatch(/^would release 10\.71\.\d+\.\d+ \(network (big|small)-\d+\) of pod default\//);
    expect(wouldRelease.filter((l) => l.includes(`of pod default/${smallPods[0]},`)).length).toBe(1);

    const json = await gc(big.path, "--dry-run", "-o", "json");
    expect(json.exitCode).toBe(1);
    expect(json.json.refused).toEqual({ maxRelease: "50%", networks: [{ network: big.name, release: 11, total: 12 }] });
    expect(json.json.done).toEqual([]);
    expect(json.json.withheld.map((l: { podName: string }) => l.podName).sort()).toEqual([...bigPods.slice(1), smallPods[0]].sort());
    const realJson = await gc(big.path, "-o", "json");
    expect(realJson.exitCode).toBe(1);
    expect(realJson.json.dryRun).toBe(false);
    expect(realJson.json.refused.networks).toEqual([{ network: big.name, release: 11, total: 12 }]);
    expect({ big: await ls(big.path), small: await ls(small.path) }).toEqual(before);

    // A number of addresses is an exact limit.
    expect((await gc(big.path, "--max-release", "10")).exitCode).toBe(1);
    expect({ big: await ls(big.path), small: await ls(small.path) }).toEqual(before);

    // The operator means it.
    const all = await gc(big.path, "--max-release", "100%", "-o", "json");
    expect(all.exitCode).toBe(0);
    expect(all.json.refused).toBeNull();
    expect(all.json.done.length).toBe(12);
    expect(await ls(big.path)).toEqual([`c-${bigPods[0]}`]);
    expect(await ls(small.path)).toEqual(smallPods.slice(1).map((p) => `c-${p}`).sort());
  }, 60_000);

  test("within the limit gc releases: at most 10 addresses always, a share up to the limit, a number up to it", async () => {
    const [tiny, half] = networks(["tiny", "half"]) as [ReturnType<typeof networks>[0], ReturnType<typeof networks>[0]];
    const tinyPods = await podsWithAddresses(tiny.conf, 10);
    for (const p of tinyPods) await env.api.deletePod("default", p); // all of them, but only 10 addresses
    const r = await gc(tiny.path);
    expect(r.exitCode).toBe(0);
    expect(await ls(tiny.path)).toEqual([]);

    const halfPods = await podsWithAddresses(half.conf, 24);
    for (const p of halfPods.slice(0, 12)) await env.api.deletePod("default", p); // exactly 50%
    expect((await gc(half.path, "--max-release", "49%")).exitCode).toBe(1);
    expect((await ls(half.path)).length).toBe(24);
    const ok = await gc(half.path);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.split("\n").filter((l) => l.startsWith("released ")).length).toBe(12);
    expect(await ls(half.path)).toEqual(halfPods.slice(12).map((p) => `c-${p}`).sort());

    for (const p of halfPods.slice(12, 23)) await env.api.deletePod("default", p); // 11 of the 12 left
    expect((await gc(half.path, "--max-release", "500")).exitCode).toBe(0);
    expect(await ls(half.path)).toEqual([`c-${halfPods[23]}`]);
  }, 60_000);

  test.each([
    ["gc", "150%"], ["gc", "-1"], ["gc", "abc"], ["gc", "1.5"], ["gc", "%"], ["gc", "100.5%"],
    ["controller", "150%"], ["controller", "-1"], ["controller", "abc"],
  ])("%s --max-release %s is a usage error", async (command, value) => {
    const r = await runCli([command, "--conf", "/nonexistent.conf", "--max-release", value]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`kube-ipam: --max-release "${value}" is not a percentage from 0% to 100% or a number of addresses, e.g. 50% or 500\n` +
      `Run "kube-ipam help" for usage.\n`);
  });
});
