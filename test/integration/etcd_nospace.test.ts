// A full etcd: a small --quota-backend-bytes, filled until etcd raises its NOSPACE alarm. etcd then refuses
// every write that adds data and still allows deletes: ADD fails naming the alarm, STATUS answers code 50
// naming it, and DEL still releases, because a release is deletes only.
import { describe, expect, test } from "bun:test";
import { useCluster } from "../support/fixtures.ts";
import { etcdNetConf, listAllocations, runPlugin } from "../support/plugin.ts";

const env = useCluster({ etcdArgs: ["--quota-backend-bytes", String(2 * 1024 * 1024)] });

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Puts 100 kB values until etcd refuses with "database space exceeded"; returns its alarms. */
async function fill(): Promise<string> {
  const value = Buffer.alloc(100_000, "x").toString("base64");
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${env.etcd.endpoint}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: b64(`/filler/${i}`), value }) });
    if (r.status !== 200) break;
  }
  const alarms = await fetch(`${env.etcd.endpoint}/v3/maintenance/alarm`, { method: "POST", body: JSON.stringify({ action: "GET" }) });
  return alarms.text();
}

describe("etcd out of space (NOSPACE alarm)", () => {
  test("ADD fails naming the alarm, STATUS is code 50 naming it, DEL still releases", async () => {
    const conf = { ...etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: "", subnet: "10.52.0.0/24" }), cniVersion: "1.1.0" };
    for (const id of ["a", "b"]) expect((await runPlugin(conf, { command: "ADD", containerID: id })).exitCode).toBe(0);
    expect(await fill()).toContain("NOSPACE");

    const add = await runPlugin(conf, { command: "ADD", containerID: "c" });
    expect(add.exitCode).toBe(1);
    expect(add.json.code).toBe(11);
    expect(add.json.msg).toContain("NOSPACE");
    expect(add.json.msg).toContain(env.etcd.endpoint);

    const status = await runPlugin(conf, { command: "STATUS" });
    expect(status.json.code).toBe(50);
    expect(status.json.msg).toContain("NOSPACE");

    expect((await runPlugin(conf, { command: "DEL", containerID: "a" })).exitCode).toBe(0);
    expect((await listAllocations(conf, env.dir.path)).map((a: any) => a.containerID)).toEqual(["b"]);
    // A retried ADD of a container that holds its address needs no write either.
    const again = await runPlugin(conf, { command: "ADD", containerID: "b" });
    expect(again.exitCode).toBe(0);
  }, 60_000);
});
