// Full disks: the embedded store on a tmpfs mounted a few kilobytes small. ADDs until the file system is full
// fail with a clear error, leave nothing half-written that ls would not show, never hand out an address
// twice; DEL still works; once there is space again, ADD works again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileNetConf, listAllocations, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
let mnt: string;

beforeAll(() => {
  dir = tempDir();
  mnt = join(dir.path, "tiny");
  mkdirSync(mnt);
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=4096", "tmpfs", mnt], { stderr: "pipe" });
  if (mount.exitCode !== 0) throw new Error(`cannot mount a tmpfs (the tests run as root): ${mount.stderr}`);
});
afterAll(() => {
  Bun.spawnSync(["umount", mnt]);
  dir.cleanup();
});

describe("embedded store on a full file system", () => {
  test("ADD fails naming the data directory and the lack of space; nothing hidden is left; DEL works; space freed, ADD works", async () => {
    const conf = fileNetConf(mnt, { subnet: "10.51.0.0/16", agentSocket: "", logFile: join(dir.path, "kube-ipam.log") });
    const filler = join(mnt, "filler");
    writeFileSync(filler, Buffer.alloc(16 * 1024));

    const ok: { id: string; ip: string }[] = [];
    let failure: any;
    for (let i = 0; i < 1000 && !failure; i++) {
      const r = await runPlugin(conf, { command: "ADD", containerID: `c${i}` });
      if (r.exitCode === 0) ok.push({ id: `c${i}`, ip: r.json.ips[0].address.split("/")[0] });
      else failure = r.json;
    }
    expect(failure).toBeDefined();
    expect(failure.code).toBe(5);
    expect(failure.msg).toContain(join(mnt, "data"));
    expect(failure.msg).toContain("no space left on device");
    expect(ok.length).toBeGreaterThan(0);
    expect(new Set(ok.map((a) => a.ip)).size).toBe(ok.length);

    // Every claim and owner entry on disk is one ls shows: the failed ADD left nothing behind.
    const held = await listAllocations(conf, dir.path);
    expect(held.map((a: any) => a.containerID).sort()).toEqual(ok.map((a) => a.id).sort());
    const net = join(mnt, "data", conf.name);
    expect(readdirSync(join(net, "ips")).length).toBe(ok.length);
    expect(readdirSync(join(net, "owners")).length).toBe(ok.length);

    // A retry while still full fails the same way and hands nothing out.
    expect((await runPlugin(conf, { command: "ADD", containerID: "retry" })).json.code).toBe(5);
    // DEL needs no space.
    expect((await runPlugin(conf, { command: "DEL", containerID: ok[0]!.id })).exitCode).toBe(0);

    rmSync(filler);
    const again = await runPlugin(conf, { command: "ADD", containerID: "retry" });
    expect(again.exitCode).toBe(0);
    const after = await listAllocations(conf, dir.path);
    expect(new Set(after.map((a: any) => a.ip)).size).toBe(after.length);
    expect(after.length).toBe(ok.length);
  }, 120_000);
});
