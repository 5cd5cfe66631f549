// A million addresses and an IPv6 /64: the map endpoint aggregates on the server (never a cell per address
// beyond a few thousand), answers quickly, and the page stays responsive while it draws, hovers and zooms.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { type Browser, launchBrowser, type Tab } from "../support/browser.ts";
import { type Controller, startController } from "../support/controller.ts";
import { type NetFile, netFile } from "../support/dashboard_scene.ts";
import { eventually } from "../support/eventually.ts";
import { useCluster } from "../support/fixtures.ts";
import type { PageDocument, PageElement } from "../support/page_dom.ts";
import { makePod } from "../support/kube_apiserver.ts";
import { mapLimit, runCli, runPlugin } from "../support/plugin.ts";

// Used only inside functions that run in the page.
declare const document: PageDocument;
declare const window: object;
declare const PerformanceObserver: new (cb: (list: { getEntries(): { duration: number }[] }) => void) => { observe(o: { type: string; buffered: boolean }): void };

const env = useCluster({ kubeApi: true });
const PODS = 40;
let big: NetFile;
let controller: Controller;
let base: string;
let held: { v4: string; v6: string; pod: string }[];

beforeAll(async () => {
  big = netFile(env, `/ui-large-${process.pid}`, "big", {
    ranges: [[{ subnet: "10.64.0.0/12" }], [{ subnet: "fd00:64::/64" }]],
    exclude: ["10.64.0.0/20"],
  });
  held = await mapLimit(Array.from({ length: PODS }, (_, i) => `app-${i}`), 4, async (pod, i) => {
    await env.api.setPod(makePod({ namespace: "big", name: pod, nodeName: `node-${i % 4}` }));
    const r = await runPlugin(big.conf, {
      command: "ADD", containerID: `c-${pod}`, args: `K8S_POD_NAMESPACE=big;K8S_POD_NAME=${pod}`, env: { KUBE_IPAM_NODE_NAME: `node-${i % 4}` },
    });
    if (r.exitCode !== 0) throw new Error(`ADD ${pod} failed: ${r.stdout}`);
    const [v4, v6] = r.json.ips.map((x: { address: string }) => x.address.split("/")[0]);
    return { v4, v6, pod };
  });
  const reserve = await runCli(["reserve", "bulk", "10.70.0.0/16", "10.75.3.0-10.75.3.99", "--conf", big.path]);
  if (reserve.exitCode !== 0) throw new Error(reserve.stderr);
  controller = startController("large", big.path, ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h"]);
  base = `http://127.0.0.1:${controller.port}`;
  await eventually("the controller answers", () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), (ok) => ok);
});

afterAll(async () => {
  await controller?.kill();
});

async function timedMap(query: string): Promise<{ ms: number; bytes: number; body: any }> {
  const t = performance.now();
  const res = await fetch(`${base}/api/networks/big/map?${query}`);
  const text = await res.text();
  const ms = performance.now() - t;
  expect(res.status).toBe(200);
  return { ms, bytes: text.length, body: JSON.parse(text) };
}

const total = (xs: (number | string)[]) => xs.reduce<bigint>((a, b) => a + BigInt(b), 0n);

describe("a million addresses", () => {
  test("the /12's map comes in 4,096 aggregated blocks, quickly, and its counts are kube-ipam usage's", async () => {
    const usage = (await runCli(["usage", "--conf", big.path, "-o", "json"])).json;
    await timedMap("from=10.64.0.0&to=10.79.255.255&cells=4096"); // the first read of the store
    const { ms, bytes, body } = await timedMap("from=10.64.0.0&to=10.79.255.255&cells=4096");
    expect(ms).toBeLessThan(1000);
    expect(bytes).toBeLessThan(150_000);
    expect(body).toMatchObject({ mode: "block", count: 1_048_576, blockSize: 256, cells: 4096 });
    const b = body.blocks;
    expect([total(b.held), total(b.reserved), total(b.free), total(b.unavailable)])
      .toEqual([BigInt(usage[0].used), BigInt(usage[0].reserved), BigInt(usage[0].free), BigInt(1_048_576 - usage[0].size)]);
    // The excluded /20 is the first 16 blocks: nothing in them is handed out.
    expect(b.unavailable.slice(0, 16)).toEqual(Array(16).fill(256));
  });

  test("an IPv6 /64 comes in blocks of 2^52, and a prefix zooms down to one cell per address", async () => {
    const { ms, body } = await timedMap("from=fd00:64::&to=fd00:64::ffff:ffff:ffff:ffff&cells=4096");
    expect(ms).toBeLessThan(1000);
    expect(body).toMatchObject({ mode: "block", count: "18446744073709551616", blockSize: 2 ** 52, cells: 4096 });
    const b = body.blocks;
    expect(total(b.held) + total(b.reserved) + total(b.free) + total(b.unavailable)).toBe(1n << 64n);
    expect(total(b.held)).toBe(BigInt(PODS));
    // The /116 holding the first pod's address: 4,096 addresses, one state each.
    const v6 = held[0]!.v6;
    const value = ipv6(v6);
    const from = value & ~0xfffn;
    const zoomed = (await timedMap(`from=${formatV6(from)}&to=${formatV6(from + 0xfffn)}&cells=4096`)).body;
    expect(zoomed).toMatchObject({ mode: "address", count: 4096, blockSize: 1 });
    expect(zoomed.states[Number(value - from)]).toBe("d");
  });

  describe("in a browser", () => {
    let browser: Browser;
    let tab: Tab;
    let page: Page;

    beforeAll(async () => {
      browser = await launchBrowser();
      // Every task that holds the page's main thread for more than 50 ms, recorded from the first script on.
      await browser.context.addInitScript(() => {
        const w = window as unknown as { longTasks: number[] };
        w.longTasks = [];
        new PerformanceObserver((list) => list.getEntries().forEach((e) => w.longTasks.push(e.duration))).observe({ type: "longtask", buffered: true });
      });
      tab = await browser.open(`${base}/`);
      page = tab.page;
    });

    afterAll(async () => {
      await browser?.close();
    });

    /** The page answers a script within a second: it is not frozen. */
    async function responsive(): Promise<void> {
      const t = performance.now();
      await page.evaluate(() => document.querySelectorAll("*").length);
      expect(performance.now() - t).toBeLessThan(1000);
      const longest = Math.max(0, ...await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks));
      expect(longest).toBeLessThan(1000);
    }

    function mapState() {
      return page.$eval("#map", (c) => ({ ...(c as PageElement).dataset }));
    }

    /** Moves the mouse to the centre of cell `i` of the map. */
    async function toCell(i: number): Promise<void> {
      const { cols, cell, gutter } = await mapState();
      const b = (await (await page.$("#map"))!.boundingBox())!;
      const size = Number(cell);
      await page.mouse.move(b.x + Number(gutter) + (i % Number(cols)) * size + size / 2, b.y + Math.floor(i / Number(cols)) * size + size / 2);
    }

    async function tooltip(includes: string): Promise<string> {
      return eventually(`the tooltip saying "${includes}"`, () => page.$eval("#tooltip", (t) => (t as PageElement).hidden ? "" : (t as PageElement).innerText),
        (t) => t.replace(/\s+/g, " ").includes(includes), { everyMs: 50 });
    }

    test("the /12 draws as blocks, and a block zooms in to its addresses", async () => {
      expect(await mapState()).toMatchObject({ mode: "block", cells: "4096", from: "10.64.0.0" });
      await responsive();
      const { v4, pod } = held[0]!;
      const block = Math.floor((ipv4(v4) - ipv4("10.64.0.0")) / 256);
      await toCell(block);
      const prefix = `${v4.split(".").slice(0, 3).join(".")}.0/24`;
      expect(await tooltip(prefix)).toContain("256 addresses");
      await tab.screenshot("large");
      await page.mouse.click(...await center(block));
      await eventually("one cell per address", mapState, (s) => s.mode === "address" && s.cells === "256" && s.from === prefix.split("/")[0]);
      expect(await page.$$eval("#crumbs > *:not(.sep)", (cs) => cs.map((c) => c.textContent))).toEqual(["10.64.0.0/12", prefix]);
      await toCell(ipv4(v4) % 256);
      await tooltip(`big/${pod}`);
      await responsive();
    });

    test("the /64 draws as blocks, and the zoom box takes it down to a /116", async () => {
      await page.click('#ranges tbody tr[data-range-set="1"]');
      await eventually("the /64's blocks", mapState, (s) => s.mode === "block" && s.from === "fd00:64::" && s.cells === "4096");
      await responsive();
      const { v6, pod } = held[0]!;
      const from = ipv6(v6) & ~0xfffn;
      await page.fill("#zoom-input", `${formatV6(from)}/116`);
      await page.click("#zoom-form button[type=submit]");
      await eventually("the /116's addresses", mapState, (s) => s.mode === "address" && s.cells === "4096");
      await toCell(Number(ipv6(v6) - from));
      await tooltip(`big/${pod}`);
      await responsive();
      await tab.screenshot("large-ipv6");
      expect(tab.errors).toEqual([]);
    });

    async function center(i: number): Promise<[number, number]> {
      const { cols, cell, gutter } = await mapState();
      const b = (await (await page.$("#map"))!.boundingBox())!;
      const size = Number(cell);
      return [b.x + Number(gutter) + (i % Number(cols)) * size + size / 2, b.y + Math.floor(i / Number(cols)) * size + size / 2];
    }
  });
});

function ipv4(ip: string): number {
  return ip.split(".").reduce((v, p) => v * 256 + Number(p), 0);
}

function ipv6(ip: string): bigint {
  const [head, tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Full form (no "::"): the API parses any form. */
function formatV6(v: bigint): string {
  return Array.from({ length: 8 }, (_, i) => ((v >> BigInt((7 - i) * 16)) & 0xffffn).toString(16)).join(":");
}
