// The dashboard in a real browser (Debian's Chromium, headless) against the built binary's controller, real
// etcd and a real kube-apiserver: what an operator sees is what the CLI says, and it follows the
// cluster live, without a reload. Screenshots of each state go to test/ui/screenshots/.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { type Browser, launchBrowser, type Tab } from "../support/browser.ts";
import { type Controller, startController } from "../support/controller.ts";
import { buildScene, type Scene } from "../support/dashboard_scene.ts";
import { eventually } from "../support/eventually.ts";
import { useCluster } from "../support/fixtures.ts";
import type { PageDocument, PageElement } from "../support/page_dom.ts";

// Used only inside functions that run in the page.
declare const document: PageDocument;
declare const window: object;

const env = useCluster({ kubeApi: true });
let scene: Scene;
let controller: Controller;
let browser: Browser;
let tab: Tab;
let page: Page;
let base: string;

function start(port?: number): Controller {
  return startController("dashboard", scene.web.path, ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h"], port);
}

async function healthy(c: Controller): Promise<void> {
  await eventually("the controller answers", () => fetch(`http://127.0.0.1:${c.port}/healthz`).then((r) => r.ok, () => false), (ok) => ok);
}

beforeAll(async () => {
  scene = await buildScene(env);
  controller = start();
  await healthy(controller);
  base = `http://127.0.0.1:${controller.port}`;
  browser = await launchBrowser();
  tab = await browser.open(`${base}/`);
  page = tab.page;
});

afterAll(async () => {
  await browser?.close();
  await controller?.kill();
});

/** Polls the page with `read` (run in the browser) until `ok`, within 10 s. */
function inPage<T>(what: string, read: () => T, ok: (v: T) => boolean, withinMs = 10_000): Promise<T> {
  return eventually(what, () => page.evaluate(read), ok, { withinMs, everyMs: 50 });
}

/** The ranges table as {subnet, range, size, used, reserved, free} with the raw counts. */
function rangeRows() {
  return [...document.querySelectorAll("#ranges tbody tr")].map((r) => ({
    subnet: r.dataset.subnet,
    range: r.dataset.range,
    ...Object.fromEntries([...r.querySelectorAll("td[data-key]")].map((td) => [td.dataset.key, td.dataset.value])),
    text: [...r.querySelectorAll("td[data-key]")].map((td) => td.textContent),
  }));
}

async function usageRows() {
  const usage: any[] = await scene.cli("usage", "--conf", scene.web.path, "-o", "json");
  return usage.map((u) => ({
    subnet: u.subnet, range: u.range, size: String(u.size), used: String(u.used), reserved: String(u.reserved), free: String(u.free),
    text: [u.size, u.used, u.reserved, u.free].map((n: number) => n.toLocaleString("en-US")),
  }));
}

/** The addresses listed as search results, once they are `expected`. */
function results(expected: readonly string[], what = `the search results ${expected.join(", ")}`): Promise<(string | undefined)[]> {
  return eventually(what, () => page.$$eval("#results li", (ls) => ls.map((l) => (l as PageElement).dataset.ip)),
    (v) => JSON.stringify(v) === JSON.stringify(expected), { everyMs: 50 });
}

/** Hovers the map cell of `ip` (an IPv4 address in the map's window) until the tooltip says `expected`. */
async function hoverAddress(ip: string, expected: string): Promise<string> {
  const { cols, cell, gutter, from } = await page.$eval("#map", (c) => ({ ...(c as PageElement).dataset }));
  const toInt = (a: string) => a.split(".").reduce((v, p) => v * 256 + Number(p), 0);
  const i = toInt(ip) - toInt(from!);
  const size = Number(cell);
  await page.mouse.move(0, 0);
  const b = (await (await page.$("#map"))!.boundingBox())!;
  await page.mouse.move(b.x + Number(gutter) + (i % Number(cols)) * size + size / 2, b.y + Math.floor(i / Number(cols)) * size + size / 2);
  return (await inPage(`the tooltip of ${ip}`, () => {
    const t = document.getElementById("tooltip")!;
    return t.hidden ? "" : t.innerText;
  }, (t) => t.replace(/\s+/g, " ").includes(`${ip} ${expected}`) || t.replace(/\s+/g, " ").includes(expected))).replace(/\s+/g, " ");
}

describe("the dashboard in a browser", () => {
  test("lists every network, with the usage numbers of kube-ipam usage -o json", async () => {
    const networks = await inPage("networks listed", () =>
      [...document.querySelectorAll("#networks tbody tr")].map((r) => r.dataset.network), (v) => v.length === 2);
    expect(networks).toEqual(["db", "web"]);
    expect(await page.textContent("#network-title")).toBe("web");
    expect(await page.evaluate(rangeRows)).toEqual(await usageRows());
    // The network the controller has no config for: what the store knows, its held addresses.
    const dbHeld = await page.$eval('#networks tr[data-network="db"] td[data-key="held"]', (td) => td.textContent);
    expect(dbHeld).toBe(String((await scene.cli("ls", "--conf", scene.db.path, "-o", "json")).length));
    await tab.screenshot("overview");
  });

  test("searching a pod finds its address, and its card says what kube-ipam show says", async () => {
    const ip = scene.ips.get("web-3")!;
    await page.fill("#search-q", "web-3");
    await results([ip]);
    await page.click(`#results li[data-ip="${ip}"] a`);
    await inPage("the address card", () => document.querySelector("#details .ip")?.dataset.ip, (v) => v === ip);
    const card = Object.fromEntries(await page.$$eval("#details dd", (dds) => dds.map((d) => [(d as PageElement).dataset.key, d.textContent])));
    const shown: string = await scene.cli("show", ip, "--conf", scene.web.path);
    const cli = Object.fromEntries(shown.trim().split("\n").map((l) => {
      const m = /^([^:]+):\s+(.*)$/.exec(l)!;
      return [m[1], m[2]];
    }));
    delete cli.Address;
    // "Allocated: <ISO> (<age> ago)": the age moves on between the two reads.
    expect(card.Allocated!.split(" ")[0]).toBe(cli.Allocated.split(" ")[0]);
    delete card.Allocated;
    delete cli.Allocated;
    expect(card).toEqual(cli);
    expect(card.Pod).toBe("shop/web-3");
    expect(card.Node).toBe("node-a");
    expect(await hoverAddress(ip, "shop/web-3 · node-a")).toContain(`${ip} dynamic shop/web-3 · node-a eth0 · dynamic`);
    await tab.screenshot("address");
  });

  test("kind and node filters narrow the search; a CIDR finds another network's addresses", async () => {
    const ls: any[] = [
      ...await scene.cli("ls", "--conf", scene.db.path, "-o", "json"),
      ...await scene.cli("ls", "--conf", scene.web.path, "-o", "json"),
    ];
    try {
      await page.fill("#search-q", "");
      await page.selectOption("#search-kind", "parked");
      await results([scene.ips.get("cache-1")!], "the parked address");
      await page.selectOption("#search-kind", "");
      await page.selectOption("#search-node", "node-c");
      await results(ls.filter((a) => a.node === "node-c").map((a) => a.ip), "node-c's addresses, db's then web's");
      await page.selectOption("#search-node", "");
      await page.fill("#search-q", "10.50.0.0/24");
      await results([scene.ips.get("pg-0")!, scene.ips.get("pg-1")!].sort(), "db's addresses");
      expect(await page.$$eval("#results li", (ls) => ls.map((l) => (l as PageElement).dataset.network))).toEqual(["db", "db"]);
    } finally {
      await page.selectOption("#search-kind", "");
      await page.selectOption("#search-node", "");
      await page.fill("#search-q", "");
    }
  });

  test("an ADD through the plugin appears on the open page within seconds, without a reload", async () => {
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    expect(await page.getAttribute("#live", "data-state")).toBe("live");
    const ip = await scene.add(scene.web, "web-new", { node: "node-b" });
    await inPage("the feed shows the allocation", () =>
      [...document.querySelectorAll("#feed li[data-kind=allocated]")].map((l) => l.dataset.ip), (v) => v.includes(ip));
    const usage = await usageRows();
    await inPage("the usage numbers follow", rangeRows, (rows) => JSON.stringify(rows) === JSON.stringify(usage));
    expect(await hoverAddress(ip, "shop/web-new · node-b")).toContain(`${ip} dynamic shop/web-new · node-b`);
    await scene.del(scene.web, "web-new");
    await inPage("the feed shows the release", () =>
      [...document.querySelectorAll("#feed li[data-kind=released]")].map((l) => l.dataset.ip), (v) => v.includes(ip));
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const after = await usageRows();
    await inPage("the usage numbers follow the release", rangeRows, (rows) => JSON.stringify(rows) === JSON.stringify(after));
    // The picture docs/dashboard.png was taken from: a search on the map, an address's card, a tooltip, the feed.
    const web: any[] = (await scene.cli("ls", "--conf", scene.web.path, "-o", "json")).filter((a: any) => a.podName?.startsWith("web-"));
    try {
      await page.fill("#search-q", "shop/web");
      await results(web.map((a) => a.ip));
      await page.click(`#results li[data-ip="${scene.ips.get("web-3")}"] a`);
      await hoverAddress(scene.ips.get("web-4")!, "shop/web-4");
      await tab.screenshot("live");
    } finally {
      await page.fill("#search-q", "");
    }
  });

  test("a reserved address shows as reserved, on the map and in its card", async () => {
    await scene.cli("reserve", "hold", "10.30.0.77", "--conf", scene.web.path);
    await inPage("the reservation is listed", () =>
      [...document.querySelectorAll("#reservations .res")].map((r) => r.dataset.name), (v) => v.includes("hold"));
    const usage = await usageRows();
    await inPage("the usage counts it", rangeRows, (rows) => JSON.stringify(rows) === JSON.stringify(usage));
    expect(await hoverAddress("10.30.0.77", "reserved · reserved by hold")).toBe("10.30.0.77 reserved · reserved by hold");
    await page.click('#reservations .res[data-name="hold"] a');
    await inPage("the card", () => document.querySelector("#details .badge")?.dataset.state, (s) => s === "reserved");
    expect(await page.$eval('#details dd[data-key="Reserved by"]', (d) => d.textContent)).toBe("hold");
    await tab.screenshot("reserved");
  });

  test("when the controller goes away the page says so, and catches up once it is back", async () => {
    const port = controller.port;
    await controller.kill();
    await inPage("the page shows the break", () => document.getElementById("live")!.dataset.state, (s) => s === "reconnecting");
    expect(await page.textContent("#live-text")).toContain("reconnecting");
    await tab.screenshot("reconnecting");
    const ip = await scene.add(scene.web, "web-late", { node: "node-c" });
    controller = start(port);
    await healthy(controller);
    await inPage("live again", () => document.getElementById("live")!.dataset.state, (s) => s === "live", 15_000);
    const usage = await usageRows();
    await inPage("the numbers caught up", rangeRows, (rows) => JSON.stringify(rows) === JSON.stringify(usage));
    await page.fill("#search-q", "web-late");
    await results([ip], "the address made meanwhile");
  });

  test("the page loads nothing from anywhere but the controller, and throws no error", () => {
    expect(tab.requests.length).toBeGreaterThan(5);
    expect(tab.requests.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith("data:"))).toEqual([]);
    expect(tab.errors).toEqual([]);
  });
});
