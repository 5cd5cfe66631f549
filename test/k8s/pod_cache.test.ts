// The pod cache against a real kube-apiserver: its list, field-selected watch, resumes, bookmarks and the
// 410 Expired that makes it list again are the server's. A cut stream, an answer held back and failing
// answers come from the proxy in front of it (`api.faults()`). Each test watches a node of its own, as the
// node agent does (with its identity, kube-ipam-agent).
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient, KubeUnavailableError } from "../../src/k8s/client.ts";
import { loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { PodCache, type PodCacheOptions } from "../../src/k8s/pod_cache.ts";
import type { Pod } from "../../src/k8s/types.ts";
import { eventually } from "../support/eventually.ts";
import { type KubeApiServer, type KubeFaults, makePod, startKubeApiServer } from "../support/kube_apiserver.ts";

let dir: string;
let api: KubeApiServer;
let faults: KubeFaults;
let direct: KubeClient; // straight to the server
let proxied: KubeClient; // through the fault proxy
let errors: unknown[];
let node: string;
let nodes = 0;
const caches: PodCache[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kube-ipam-pod-cache-"));
  api = await startKubeApiServer();
  faults = api.faults();
  direct = new KubeClient(await loadKubeConfig(api.writeKubeconfig(join(dir, "direct"), "token", { identity: "agent" })));
  proxied = new KubeClient(await loadKubeConfig(api.writeKubeconfig(join(dir, "proxied"), "token", { server: faults.url, identity: "agent" })));
}, 90_000);

afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  errors = [];
  node = `cache-node-${++nodes}`;
  api.clearRequests();
  faults.requests.length = 0;
});

afterEach(async () => {
  faults.failWith(undefined);
  faults.delay(0);
  await Promise.all(caches.splice(0).map((c) => c.stop()));
});

function startCache(client = direct, options: PodCacheOptions = {}): PodCache {
  const cache = new PodCache(client, node, { onError: (e) => errors.push(e), ...options });
  caches.push(cache);
  cache.start();
  return cache;
}

/** Polls until `check` holds; fails naming `what` after a bounded wait. */
const until = (what: string, check: () => boolean, withinMs = 10_000) =>
  eventually(what, check, (ok) => ok, { withinMs, everyMs: 5 });

async function synced(client = direct, options: PodCacheOptions = {}): Promise<PodCache> {
  const cache = startCache(client, options);
  const watching = () => (client === direct ? api.openWatches : faults.openWatches) > 0;
  await until("synced and watching", () => cache.synced && watching());
  return cache;
}

const isWatch = (r: string) => r.includes("watch=true");
const ofNode = (rs: string[]) => rs.filter((r) => r.includes(`spec.nodeName%3D${node}`));
const lists = (rs: string[]) => ofNode(rs).filter((r) => !isWatch(r));
const watches = (rs: string[]) => ofNode(rs).filter(isWatch);
const rvOf = (request: string) => new URL(`https://x${request.slice(request.indexOf(" ") + 1)}`).searchParams.get("resourceVersion")!;
const annotate = (pod: Pod, value: string) =>
  api.setPod({ ...pod, metadata: { ...pod.metadata, annotations: { "kube-ipam.ip": value } } });
const pod = (name: string, options: Omit<Parameters<typeof makePod>[0], "name"> = {}) =>
  api.setPod(makePod({ name, nodeName: node, ...options }));

test("lists and watches only the pods of its node", async () => {
  const a = await pod("a");
  await pod("b", { nodeName: "elsewhere" });
  await pod("c", { namespace: "other" });
  const cache = await synced();
  expect(api.requests[0]).toBe(`GET /api/v1/pods?limit=500&fieldSelector=spec.nodeName%3D${node}`);
  // The watch starts at the list's resourceVersion (nothing has happened on this node since).
  expect(api.watchRequests).toEqual([expect.stringMatching(new RegExp(
    `^GET /api/v1/pods\\?watch=true&resourceVersion=${cache.resourceVersion}&fieldSelector=spec.nodeName%3D${node}` +
    "&allowWatchBookmarks=true&timeoutSeconds=\\d+$"))]);
  expect(cache.lookup("default", "a")).toEqual(a);
  expect(cache.lookup("default", "b")).toBeUndefined();
  expect(cache.lookup("other", "c")?.metadata.name).toBe("c");
  expect([cache.hits, cache.misses]).toEqual([2, 1]);
  // A pod created on another node later never shows up either; one on this node does.
  await pod("d", { nodeName: "elsewhere" });
  await pod("e");
  await until("e arrived", () => cache.lookup("default", "e") !== undefined);
  expect(cache.lookup("default", "d")).toBeUndefined();
  expect(errors).toEqual([]);
});

test("misses: before the first list, and a pod not in the cache yet", async () => {
  await pod("a");
  faults.delay(30_000);
  const cache = startCache(proxied);
  await until("the list was asked for", () => faults.requests.length === 1);
  expect(cache.synced).toBe(false);
  expect(cache.lookup("default", "a")).toBeUndefined();
  faults.delay(0);
  await until("synced", () => cache.synced);
  expect(cache.lookup("default", "a")).toBeDefined();
  expect(cache.lookup("default", "later")).toBeUndefined();
  expect([cache.hits, cache.misses]).toEqual([1, 2]);
  await pod("later");
  await until("later arrived", () => cache.lookup("default", "later") !== undefined);
});

test("an annotation changed through the API is seen once the watch delivers it", async () => {
  const p = await pod("web-0", { annotations: { "kube-ipam.ip": "10.0.0.5" } });
  const cache = await synced();
  expect(cache.lookup("default", "web-0", p.metadata.uid)?.metadata.annotations).toEqual({ "kube-ipam.ip": "10.0.0.5" });
  const changed = await annotate(p, "10.0.0.6");
  await until("the new annotation is seen",
    () => cache.lookup("default", "web-0", p.metadata.uid)?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.6");
  expect(cache.resourceVersion).toBe(changed.metadata.resourceVersion!);
  expect(lists(api.requests).length).toBe(1);
});

test("a pod deleted, or re-created on another node, disappears; one bound to the node appears", async () => {
  await pod("a");
  await pod("b");
  const c = await pod("c", { nodeName: "", phase: "Pending" }); // not scheduled yet
  const cache = await synced();
  expect(cache.lookup("default", "c")).toBeUndefined();
  await pod("a", { nodeName: "elsewhere" }); // a new pod of that name (new uid), on another node
  await api.deletePod("default", "b");
  await api.setPod({ ...c, spec: { ...c.spec, nodeName: node } }); // the scheduler's binding
  await until("a and b gone, c here", () =>
    !cache.lookup("default", "a") && !cache.lookup("default", "b") && cache.lookup("default", "c") !== undefined);
  expect(cache.lookup("default", "c", c.metadata.uid)?.spec?.nodeName).toBe(node);
});

test("a uid that is not the cached pod's is a miss", async () => {
  const old = await pod("db-0");
  const cache = await synced();
  expect(cache.lookup("default", "db-0", "another-uid")).toBeUndefined();
  expect(cache.lookup("default", "db-0", old.metadata.uid)).toBeDefined();
  expect([cache.hits, cache.misses]).toEqual([1, 1]);
  // Deleted and created again under the same name: only the new uid hits, once the watch has brought it.
  const fresh = await pod("db-0");
  expect(fresh.metadata.uid).not.toBe(old.metadata.uid);
  await until("the new pod arrived", () => cache.lookup("default", "db-0", fresh.metadata.uid) !== undefined);
  expect(cache.lookup("default", "db-0", old.metadata.uid)).toBeUndefined();
});

test("after dropped watches it resumes from the last version seen and does not list again; a change made while away comes from the replay", async () => {
  const p = await pod("web-0");
  const cache = await synced(proxied);
  const seen = (await annotate(p, "10.0.0.6")).metadata.resourceVersion!;
  await until("the change is seen", () => cache.resourceVersion === seen);
  faults.dropWatches();
  await until("watching again", () => watches(faults.requests).length === 2 && faults.openWatches === 1);
  expect(rvOf(watches(faults.requests)[1]!)).toBe(seen);
  expect(errors.length).toBe(1);
  expect(errors[0]).toBeInstanceOf(KubeUnavailableError);
  expect((errors[0] as Error).message).toBe(
    `Cannot watch pods from Kubernetes API "${faults.url}": connection lost during the watch (ECONNRESET)`);

  // No watch can be open while this change is made: it reaches the cache only from the resumed watch's replay.
  faults.failWith(503);
  faults.dropWatches();
  await until("a resume failed", () => errors.length >= 3);
  const away = await annotate(p, "10.0.0.7");
  faults.failWith(undefined);
  await until("the change made while away is seen",
    () => cache.lookup("default", "web-0")?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.7");
  expect(cache.resourceVersion).toBe(away.metadata.resourceVersion!);
  expect(watches(faults.requests).slice(2).every((r) => rvOf(r) === seen)).toBe(true);
  expect(lists(faults.requests).length).toBe(1);
});

test("a watch the server ends (timeoutSeconds) resumes from the version of its last bookmark", async () => {
  // Watches of 3 to 6 s: the server sends a bookmark 2 s before each ends.
  const cache = await synced(direct, { watchTimeoutSeconds: 3 });
  const listed = cache.resourceVersion!;
  // A change on another node moves the version on only through a bookmark.
  const elsewhere = await pod("elsewhere-0", { nodeName: "elsewhere" });
  const bookmarked = elsewhere.metadata.resourceVersion!;
  await until("the bookmark is seen", () => cache.resourceVersion === bookmarked, 15_000);
  await until("the next watch", () => watches(api.requests).length >= 2, 15_000);
  expect(watches(api.requests).map(rvOf)).toEqual([listed, bookmarked]);
  expect(lists(api.requests).length).toBe(1);
  expect(errors).toEqual([]);
}, 30_000);

test("a resume too old for the API server's watch cache (it restarted meanwhile): 410 Expired, it lists again and converges", async () => {
  const a = await pod("a");
  await pod("b");
  const cache = await synced(proxied);
  const before = cache.resourceVersion!;
  // No watch can be open while the world changes and the API server restarts: the resume must be too old.
  faults.failWith(503);
  faults.dropWatches();
  await until("a resume failed", () => errors.length >= 2);
  await api.deletePod("default", "b");
  await pod("c");
  const changed = await annotate(a, "10.0.0.9");
  await api.restart(); // its watch cache starts again at the current revision
  faults.failWith(undefined);
  await until("converged", () =>
    !cache.lookup("default", "b") && cache.lookup("default", "c") !== undefined &&
    cache.lookup("default", "a")?.metadata.annotations?.["kube-ipam.ip"] === "10.0.0.9");
  const expired = errors.find((e) => e instanceof KubeUnavailableError && e.status === 410) as Error;
  expect(expired.message).toMatch(new RegExp(`^Cannot watch pods from Kubernetes API "${faults.url}": ` +
    `watch ERROR event 410 Expired: too old resource version: ${before} \\(\\d+\\)$`));
  expect(lists(faults.requests).length).toBe(2);
  await until("watching again", () => faults.openWatches === 1);
  // The new watch starts from the new list, which holds every change.
  expect(BigInt(rvOf(watches(faults.requests).at(-1)!))).toBeGreaterThanOrEqual(BigInt(changed.metadata.resourceVersion!));
  expect(cache.synced).toBe(true);
}, 30_000);

test("stop() ends the watch and the loop: no further requests", async () => {
  const cache = await synced();
  await cache.stop();
  await until("the watch stream is closed", () => api.openWatches === 0);
  const count = api.requests.length;
  await pod("after");
  await Bun.sleep(300); // longer than the first backoffs: a loop still running would have asked again
  expect(api.requests.length).toBe(count);
  expect(cache.lookup("default", "after")).toBeUndefined();
  expect(errors).toEqual([]);
});

test("stop() during a list the API holds back, and during a backoff, returns at once", async () => {
  faults.delay(30_000);
  const listing = startCache(proxied);
  await until("the list was asked for", () => faults.requests.length === 1);
  let t = Date.now();
  await listing.stop();
  expect(Date.now() - t).toBeLessThan(1000);
  faults.delay(0);

  faults.failWith(500);
  const failing = new PodCache(proxied, node, { onError: (e) => errors.push(e), minBackoffMs: 60_000, maxBackoffMs: 60_000 });
  failing.start();
  await until("a list failed", () => errors.length === 1);
  t = Date.now();
  await failing.stop();
  expect(Date.now() - t).toBeLessThan(1000);
  expect((errors[0] as KubeUnavailableError).status).toBe(500);
  expect(failing.synced).toBe(false);
});
