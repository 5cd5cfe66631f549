// The bed's faults do what the chaos runs count on: a cut stops traffic between the nodes it names (and only
// them) until it is cleared, a lossy link at 100% passes nothing, and a slow link puts its share of packets
// through the slow class. Real namespaces; a server in one of them, requests from the observer and a host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { applyCut, applyLink, clearCut, clearLink, createNetwork, destroyNetwork, inNetns, run } from "./netns.ts";
import { nodeNamed, OBSERVER_IP } from "./topology.ts";

const e1 = nodeNamed("e1");
const h1 = nodeNamed("h1");
const URL_E1 = `http://${e1.ip}:8080/`;

/** Whether a request to e1's server is answered, from the observer or from inside `from`'s namespace. */
async function answered(from?: typeof h1): Promise<boolean> {
  if (!from) return fetch(URL_E1, { signal: AbortSignal.timeout(1500) }).then((r) => r.ok, () => false);
  const r = Bun.spawnSync(inNetns(from.netns, ["curl", "-s", "-m", "1.5", "-o", "/dev/null", "-w", "%{http_code}", URL_E1]), { stdout: "pipe" });
  return r.stdout.toString() === "200";
}

describe("the bed's network faults", () => {
  let server: Subprocess;
  const site = mkdtempSync(join(tmpdir(), "kube-ipam-netns-"));
  beforeAll(async () => {
    createNetwork();
    writeFileSync(join(site, "index.html"), "ok\n");
    server = Bun.spawn(inNetns(e1.netns, ["busybox", "httpd", "-f", "-p", `${e1.ip}:8080`, "-h", site]), { stdout: "ignore", stderr: "ignore" });
    for (let i = 0; i < 100 && !(await answered()); i++) await Bun.sleep(50);
  });
  afterAll(async () => {
    server?.kill("SIGKILL");
    await server?.exited;
    destroyNetwork();
    rmSync(site, { recursive: true, force: true });
  });

  test("every node reaches every other through the bridge", async () => {
    expect(await answered()).toBe(true);
    expect(await answered(h1)).toBe(true);
  });

  test("a cut drops what it names, both ways, and nothing else; clearing it heals", async () => {
    applyCut(e1, { dropFrom: [h1.ip], dropTo: [h1.ip] });
    expect(await answered(h1)).toBe(false);
    expect(await answered()).toBe(true); // the observer is not cut
    clearCut(e1);
    expect(await answered(h1)).toBe(true);
  });

  test("a one-way cut: e1 hears nothing from the observer, so the observer's requests go unanswered", async () => {
    applyCut(e1, { dropFrom: [OBSERVER_IP], dropTo: [] });
    expect(await answered()).toBe(false);
    clearCut(e1);
    expect(await answered()).toBe(true);
  });

  test("a link losing every packet passes nothing; cleared, it passes again", async () => {
    applyLink(e1, { lossPercent: 100, slowPercent: 0 });
    expect(await answered()).toBe(false);
    clearLink(e1);
    expect(await answered()).toBe(true);
  });

  test("a slow link sends its share of packets through the slow class", async () => {
    applyLink(e1, { lossPercent: 0, slowPercent: 100 });
    expect(await answered()).toBe(true);
    const classes = run(inNetns(e1.netns, ["tc", "-s", "class", "show", "dev", "eth0"]));
    const slow = /class htb 1:20 [^\n]*\n Sent (\d+) bytes (\d+) pkt/.exec(classes);
    expect(Number(slow?.[2] ?? 0)).toBeGreaterThan(0);
    clearLink(e1);
    expect(run(inNetns(e1.netns, ["tc", "qdisc", "show", "dev", "eth0"]))).not.toContain("htb");
  });
});
