// Many plugin processes at once on one host, and processes killed at any instant, on the
// embedded store: no address is ever held twice and nothing blocks an address for good.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileNetConf, mapLimit, listAllocations, runPlugin, spawnPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir();
});
afterAll(() => dir.cleanup());

function addressOf(reply: { json: any }): string {
  return reply.json.ips[0].address.split("/")[0];
}

const listHeld = (conf: unknown, _name: string) => listAllocations(conf, dir.path);

describe("embedded store under concurrency", () => {
  test("60 concurrent ADDs get distinct addresses, then concurrent DELs release them all", async () => {
    // 10.20.0.0/26 with rangeEnd .60: exactly 60 usable addresses (.1 is the gateway).
    const conf = fileNetConf(dir.path, { subnet: "10.20.0.0/26", rangeStart: "10.20.0.2", rangeEnd: "10.20.0.61" }, { name: "conc" });
    const ids = Array.from({ length: 60 }, (_, i) => `conc-${i}`);
    const replies = await mapLimit(ids, 60, (id) => runPlugin(conf, { command: "ADD", containerID: id }));
    for (const r of replies) expect(r.exitCode).toBe(0);
    const addrs = replies.map(addressOf);
    expect(new Set(addrs).size).toBe(60);
    expect((await listHeld(conf, "conc")).length).toBe(60);

    const full = await runPlugin(conf, { command: "ADD", containerID: "one-too-many" });
    expect(full.json.code).toBe(100);

    const dels = await mapLimit(ids, 60, (id) => runPlugin(conf, { command: "DEL", containerID: id }));
    for (const r of dels) expect(r.exitCode).toBe(0);
    expect(await listHeld(conf, "conc")).toEqual([]);
  });

  test("plugins killed mid-ADD never leave a duplicate, a torn record or a blocked address", async () => {
    const poolSize = 40;
    const conf = fileNetConf(dir.path, { subnet: "10.21.0.0/26", rangeStart: "10.21.0.2", rangeEnd: `10.21.0.${poolSize + 1}` }, { name: "killed" });
    const ids = Array.from({ length: poolSize }, (_, i) => `kill-${i}`);
    let killedCount = 0;
    for (let round = 0; round < 6; round++) {
      // Start every ADD, kill about half of them at a random instant, let the others finish.
      const procs = ids.map((id) => spawnPlugin(conf, { command: "ADD", containerID: id }));
      const kills = procs.map((p, i) => {
        if (i % 2 === round % 2) return Promise.resolve();
        return new Promise<void>((resolve) => setTimeout(() => { p.kill(9); resolve(); }, Math.random() * 25));
      });
      await Promise.all(kills);
      const codes = await Promise.all(procs.map((p) => p.exited));
      killedCount += codes.filter((c) => c !== 0 && c !== 1).length;

      // Whatever was left: every record whole, every address held once.
      const ipsDir = join(dir.path, "data", "killed", "ips");
      for (const f of readdirSync(ipsDir)) JSON.parse(readFileSync(join(ipsDir, f), "utf8"));
      const held = await listHeld(conf, "killed");
      expect(new Set(held.map((a) => a.ip)).size).toBe(held.length);
      expect(new Set(held.map((a) => a.containerID)).size).toBe(held.length);

      // The runtime retries: every container ends up with one distinct address from the full pool.
      const retried = await mapLimit(ids, 20, (id) => runPlugin(conf, { command: "ADD", containerID: id }));
      for (const r of retried) expect(r.exitCode).toBe(0);
      expect(new Set(retried.map(addressOf)).size).toBe(poolSize);

      // And the runtime's DELs free everything again.
      const dels = await mapLimit(ids, 20, (id) => runPlugin(conf, { command: "DEL", containerID: id }));
      for (const r of dels) expect(r.exitCode).toBe(0);
      expect(await listHeld(conf, "killed")).toEqual([]);
    }
    // The scenario only means something if processes really died mid-flight.
    expect(killedCount).toBeGreaterThan(0);
  }, 120_000);
});
