import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient, KubeUnavailableError } from "../../src/k8s/client.ts";
import { loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { PodCache } from "../../src/k8s/pod_cache.ts";
import type { Pod } from "../../src/k8s/types.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type KubeApi, makePod, startKubeApi } from "../support/k8s_api.ts";

let pki: TestPki;
let dir: string;
let api: KubeApi;
let kube: KubeClient;
let errors: unknown[];
const caches: PodCache[] = [];

beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), "kube-ipam-pod-cache-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

beforeEach(async () => {
  api = startKubeApi(pki);
  kube = new KubeClient(await loadKubeConfig(api.writeKubeconfig(mkdtempSync(join(dir, "k")), "token")));
  errors = [];
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.stop()));
  api.stop();
});

function startCache(node = "node-1"): PodCache {
  const cache = new PodCache(kube, node, { onError: (e) => errors.push(e) });
  caches.push(cache);
  cache.start();
  return cache;
}

/** Polls until `check` holds; fails naming `what` after a bounded wait. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await Bun.sleep(5);
  }
}

async function synced(node = "node-1"): Promise<PodCache> {
  const cache = startCache(node);
  await until("synced and watching", () => cache.synced && api.openWatches > 0);
  return cache;
}

const lists = () => api.requests.filter((r) => !r.includes("watch=true"));
const annotate = (pod: Pod, value: string): Pod =>
  api.setPod({ ...pod, metadata: { ...pod.metadata, annotations: { "kube-ipam.ip": value } } });
const moveTo = (pod: Pod, nodeName: string): Pod => api.setPod({ ...pod, spec: { ...pod.spec, nodeName } });

test("lists and watches only the pods of its node", async () => {
  const a = api.setPod(makePod({ name: "a", nodeName: "node-1" }));
  api.setPod(makePod({ name: "b", nodeName: "node-2" }));
  api.setPod(makePod({ namespace: "other", name: "c", nodeName: "node-1" }));
  const cache = await synced();
  expect(api.requests[0]).toBe("GET /api/v1/pods?limit=500&fieldSelector=spec.nodeName%3Dnode-1");
  const listRV = api.resourceVersion;
  expect(api.watchRequests).toEqual([expect.stringMatching(new RegExp(
    `^GET /api/v1/pods\\?watch=true&resourceVersion=${listRV}&fieldSelector=spec.nodeName%3Dnode-1` +
    "&allowWatchBookmarks=true&timeoutSeconds=\\d+$"))]);
  expect(cache.lookup("default", "a")).toEqual(a);
  expect(cache.lookup("default", "b")).toBeUndefined();
  expect(cache.lookup("other", "c")?.metadata.name).toBe("c");
  expect([cache.hits, cache.misses]).toEqual([2, 1]);
  // A pod created on another node later never shows up either; one on this node does.
  api.setPod(makePod({ name: "d", nodeName: "node-2" }));
  api.setPod(makePod({ name: "e", nodeName: "node-1" }));
  await until("e arrived", () => cache.lookup("default", "e") !== undefined);
  expect(cache.lookup("default", "d")).toBeUndefined();
  expect(errors).toEqual([]);
});

test("misses: before the first list, and a pod not in the cache yet", async () => {
  api.setPod(makePod({ name: "a" }));
  api.delay(30_000);
  const cache = startCache();
  await until("the list was asked for", () => api.requests.length === 1);
  expect(cache.synced).toBe(false);
  expect(cache.lookup("default", "a")).toBeUndefined();
  api.delay(0);
  await until("synced", () => cache.synced);
  expect(cache.lookup("default", "a")).toBeDefined();
  expect(cache.lookup("default", "later")).toBeUndefined();
  expect([cache.hits, cache.misses]).toEqual([1, 2]);
  api.setPod(makePod({ name: "later" }));
  await until("later arrived", () => cache.lookup("default", "later") !== undefined);
});

test("an annotation changed through the API is seen once the watch delivers it", async () => {
  const pod = api.setPod(makePod({ name: "web-0", annotations: { "kube-ipam.ip": "10.0.0.5" } }));
  const cache = await synced();
  expect(cache.lookup("default", "web-0", pod.metadata.uid)?.metadata.annotations).toEqual({ "kube-ipam.ip": "10.0.0.5" });
  const changed = annotate(pod, "10.0.0.6");
  await until("the new annotation is seen",
    () => cache.lookup("default", "web-0", pod.metadata.uid)?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.6");
  expect(cache.resourceVersion).toBe(changed.metadata.resourceVersion!);
  expect(lists().length).toBe(1);
});

test("a pod moved off the node or deleted disappears; one moved onto it appears", async () => {
  const a = api.setPod(makePod({ name: "a", nodeName: "node-1" }));
  const b = api.setPod(makePod({ name: "b", nodeName: "node-1" }));
  const c = api.setPod(makePod({ name: "c", nodeName: "node-2" }));
  const cache = await synced();
  moveTo(a, "node-2");
  api.deletePod("default", "b");
  moveTo(c, "node-1");
  await until("a and b gone, c here", () =>
    !cache.lookup("default", "a") && !cache.lookup("default", "b") && cache.lookup("default", "c") !== undefined);
  expect(cache.lookup("default", "c", c.metadata.uid)?.spec?.nodeName).toBe("node-1");
  expect(b.metadata.uid).toBeDefined();
});

test("a uid that is not the cached pod's is a miss", async () => {
  const old = api.setPod(makePod({ name: "db-0" }));
  const cache = await synced();
  expect(cache.lookup("default", "db-0", "another-uid")).toBeUndefined();
  expect(cache.lookup("default", "db-0", old.metadata.uid)).toBeDefined();
  expect([cache.hits, cache.misses]).toEqual([1, 1]);
  // Deleted and created again under the same name: only the new uid hits, once the watch has brought it.
  api.deletePod("default", "db-0");
  const fresh = api.setPod(makePod({ name: "db-0" }));
  await until("the new pod arrived", () => cache.lookup("default", "db-0", fresh.metadata.uid) !== undefined);
  expect(cache.lookup("default", "db-0", old.metadata.uid)).toBeUndefined();
});

test("after dropped watches it resumes from the last version seen, a bookmark's too, and does not list again", async () => {
  const pod = api.setPod(makePod({ name: "web-0" }));
  const cache = await synced();
  const seen = annotate(pod, "10.0.0.6").metadata.resourceVersion!;
  await until("the change is seen", () => cache.resourceVersion === seen);
  api.dropWatches();
  await until("watching again", () => api.watchRequests.length === 2 && api.openWatches === 1);
  expect(api.watchRequests[1]).toContain(`&resourceVersion=${seen}&`);
  expect(errors.length).toBe(1);
  expect(errors[0]).toBeInstanceOf(KubeUnavailableError);
  expect((errors[0] as Error).message).toBe(
    `Cannot watch pods from Kubernetes API "${api.url}": connection lost during the watch (ECONNRESET)`);

  // Changes elsewhere move the version on only through a bookmark; the next resume starts there.
  api.setPod(makePod({ name: "elsewhere", nodeName: "node-2" }));
  api.sendBookmarks();
  await until("the bookmark is seen", () => cache.resourceVersion === api.resourceVersion);
  const bookmarked = api.resourceVersion;
  api.dropWatches();
  // A change made while no watch is open comes from the resumed watch's replay.
  annotate(pod, "10.0.0.7");
  await until("the change made while away is seen",
    () => cache.lookup("default", "web-0")?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.7");
  expect(api.watchRequests[2]).toContain(`&resourceVersion=${bookmarked}&`);
  expect(lists().length).toBe(1);
});

test("a resume too old for the API's history (Expired) lists again and converges", async () => {
  const a = api.setPod(makePod({ name: "a" }));
  api.setPod(makePod({ name: "b" }));
  const cache = await synced();
  const before = cache.resourceVersion!;
  // No watch can be open while the world changes and the history is compacted: the resume must be too old.
  api.failWith(503);
  api.dropWatches();
  await until("a resume failed", () => errors.length >= 2);
  api.deletePod("default", "b");
  api.setPod(makePod({ name: "c" }));
  annotate(a, "10.0.0.9");
  api.compactWatchHistory();
  api.failWith(undefined);
  await until("converged", () =>
    !cache.lookup("default", "b") && cache.lookup("default", "c") !== undefined &&
    cache.lookup("default", "a")?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.9");
  const expired = errors.find((e) => e instanceof KubeUnavailableError && e.status === 410) as Error;
  expect(expired.message).toBe(`Cannot watch pods from Kubernetes API "${api.url}": ` +
    `watch ERROR event 410 Expired: too old resource version: ${before} (${api.resourceVersion})`);
  expect(lists().length).toBe(2);
  await until("watching again", () => api.openWatches === 1);
  expect(api.watchRequests.at(-1)).toContain(`&resourceVersion=${api.resourceVersion}&`);
  expect(cache.synced).toBe(true);
});

test("stop() ends the watch and the loop: no further requests", async () => {
  const cache = await synced();
  await cache.stop();
  await until("the watch stream is closed", () => api.openWatches === 0);
  const count = api.requests.length;
  api.setPod(makePod({ name: "after" }));
  api.dropWatches();
  await Bun.sleep(300); // longer than the first backoffs: a loop still running would have asked again
  expect(api.requests.length).toBe(count);
  expect(cache.lookup("default", "after")).toBeUndefined();
  expect(errors).toEqual([]);
});

test("stop() during a list the API holds back, and during a backoff, returns at once", async () => {
  api.delay(30_000);
  const listing = startCache();
  await until("the list was asked for", () => api.requests.length === 1);
  let t = Date.now();
  await listing.stop();
  expect(Date.now() - t).toBeLessThan(1000);
  api.delay(0);

  api.failWith(500);
  const failing = new PodCache(kube, "node-1", { onError: (e) => errors.push(e), minBackoffMs: 60_000, maxBackoffMs: 60_000 });
  failing.start();
  await until("a list failed", () => errors.length === 1);
  t = Date.now();
  await failing.stop();
  expect(Date.now() - t).toBeLessThan(1000);
  expect((errors[0] as KubeUnavailableError).status).toBe(500);
  expect(failing.synced).toBe(false);
});
