import { afterAll, afterEach, beforeAll, describe, expect, setSystemTime, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient, type KubeClientOptions, KubeUnavailableError } from "../../src/k8s/client.ts";
import { type KubeConfig, loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import {
  type KubeApi, type KubeconfigVariant, makePod, makeStatefulSet, startKubeApi, type WriteKubeconfigOptions,
} from "../support/k8s_api.ts";

let pki: TestPki;
let tokenApi: KubeApi; // bearer token
let certApi: KubeApi; // client certificates
let dir: string;
let n = 0;

beforeAll(() => {
  pki = makeTestPki();
  tokenApi = startKubeApi(pki);
  certApi = startKubeApi(pki, { auth: "client-cert" });
  dir = mkdtempSync(join(tmpdir(), "kube-ipam-client-"));
});

afterAll(() => {
  tokenApi.stop();
  certApi.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

afterEach(() => {
  for (const api of [tokenApi, certApi]) {
    api.failWith(undefined);
    api.delay(0);
    api.onRequest = undefined;
    api.requests.length = 0;
  }
  setSystemTime();
});

async function configFor(api: KubeApi, variant: KubeconfigVariant, options?: WriteKubeconfigOptions): Promise<KubeConfig> {
  return loadKubeConfig(api.writeKubeconfig(join(dir, `k${++n}`), variant, options));
}

async function clientFor(api: KubeApi, variant: KubeconfigVariant = "token", options?: WriteKubeconfigOptions,
  clientOptions?: KubeClientOptions): Promise<KubeClient> {
  return new KubeClient(await configFor(api, variant, options), clientOptions);
}

async function failure(p: Promise<unknown>): Promise<KubeUnavailableError> {
  const err = await p.then(() => undefined, (e) => e);
  expect(err).toBeInstanceOf(KubeUnavailableError);
  return err;
}

describe("getPod and getStatefulSet", () => {
  test("a pod is one GET and comes back as the API has it", async () => {
    const sts = tokenApi.setStatefulSet(makeStatefulSet({ name: "web", replicas: 2 }));
    const stored = tokenApi.setPod(makePod({
      name: "web-0", ownerStatefulSet: sts, nodeName: "node-2", annotations: { "kube-ipam.ip": "10.188.0.218" },
    }));
    const kube = await clientFor(tokenApi);
    const pod = await kube.getPod("default", "web-0");
    expect(tokenApi.requests).toEqual(["GET /api/v1/namespaces/default/pods/web-0"]);
    expect(pod).toEqual({ kind: "Pod", apiVersion: "v1", ...stored });
    expect(pod?.metadata.annotations?.["kube-ipam.ip"]).toBe("10.188.0.218");
    expect(pod?.metadata.ownerReferences?.[0]).toMatchObject({ kind: "StatefulSet", name: "web", uid: sts.metadata.uid, controller: true });
    expect(pod?.spec?.nodeName).toBe("node-2");
    expect((await kube.getStatefulSet("default", "web"))?.metadata.uid).toBe(sts.metadata.uid);
  });

  test.each([
    ["no such pod", (k: KubeClient) => k.getPod("default", "nobody")],
    ["no such namespace", (k: KubeClient) => k.getPod("nowhere", "web-0")],
    ["no such StatefulSet", (k: KubeClient) => k.getStatefulSet("default", "nothing")],
  ])("%s: undefined", async (_name, get) => {
    expect(await get(await clientFor(tokenApi))).toBeUndefined();
  });

  test("a deleted pod is gone", async () => {
    tokenApi.setPod(makePod({ name: "gone-0" }));
    const kube = await clientFor(tokenApi);
    expect(await kube.getPod("default", "gone-0")).toBeDefined();
    tokenApi.deletePod("default", "gone-0");
    expect(await kube.getPod("default", "gone-0")).toBeUndefined();
  });

  const cases: [string, (api: KubeApi) => Promise<KubeClient>, string, number | undefined][] = [
    ["wrong token", (api) => clientFor(api, "token", { token: "wrong" }), "HTTP 401 Unauthorized", 401],
    ["server error", async (api) => (api.failWith(500), clientFor(api)),
      "HTTP 500 Internal Server Error: injected failure 500", 500],
    ["forbidden", async (api) => (api.failWith(403), clientFor(api)), "HTTP 403 Forbidden: injected failure 403", 403],
    // A 404 that is not the API's NotFound for this pod (a proxy, a wrong path) must not read as "no such pod".
    ["404 for the path", (api) => clientFor(api, "token", { server: `${api.url}/wrong/prefix` }),
      "HTTP 404 Not Found: the server could not find the requested resource", 404],
    ["no answer in time", async (api) => (api.delay(30_000), clientFor(api, "token", {}, { timeoutMs: 50 })),
      "no response within 50 ms", undefined],
    ["CA that did not sign the server", async (api) => new KubeClient({ ...await configFor(api, "token"), ca: readFileSync(pki.otherCa.cert, "utf8") }),
      "server certificate not trusted: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE): check certificate-authority and server",
      undefined],
  ];
  test.each(cases)("%s: KubeUnavailableError", async (_name, make, reason, status) => {
    const kube = await make(tokenApi);
    const err = await failure(kube.getPod("default", "web-0"));
    expect(err.name).toBe("KubeUnavailableError");
    expect(err.server).toBe(kube.server);
    expect(err.status).toBe(status);
    expect(err.message).toBe(`Cannot get pod "default/web-0" from Kubernetes API "${kube.server}": ${reason}`);
  });

  test("server stopped: KubeUnavailableError", async () => {
    const api = startKubeApi(pki);
    const kube = await clientFor(api);
    api.stop();
    const err = await failure(kube.getStatefulSet("default", "web"));
    expect(err.message).toBe(`Cannot get StatefulSet "default/web" from Kubernetes API "${api.url}": connection refused (ECONNREFUSED)`);
    expect((err.cause as { code?: string }).code).toBe("ECONNREFUSED");
  });

  test("insecure-skip-tls-verify without a CA", async () => {
    const kube = new KubeClient({ ...await configFor(tokenApi, "token"), ca: undefined, insecureSkipTLSVerify: true });
    expect(await kube.getPod("default", "nobody")).toBeUndefined();
  });

  test("a rotated tokenFile is read again after a minute", async () => {
    const config = await configFor(tokenApi, "token-file-paths", { token: "old" });
    const kube = new KubeClient(config);
    expect((await failure(kube.getPod("default", "nobody"))).status).toBe(401);
    writeFileSync(config.tokenFile!, tokenApi.token);
    setSystemTime(new Date(Date.now() + 61_000));
    expect(await kube.getPod("default", "nobody")).toBeUndefined();
  });
});

describe("client certificates", () => {
  test.each([
    ["embedded", "data"],
    ["files beside the kubeconfig", "paths"],
  ] as const)("%s", async (_name, form) => {
    certApi.setPod(makePod({ name: "db-0" }));
    const kube = await clientFor(certApi, "client-cert", { form });
    expect((await kube.getPod("default", "db-0"))?.metadata.name).toBe("db-0");
  });

  test.each([
    ["a certificate from another CA", () => clientFor(certApi, "client-cert", { client: pki.strangerClient }),
      "connection reset by the server (with client certificates: is this one signed by a CA the server trusts?) (ECONNRESET)"],
    ["no certificate", () => clientFor(certApi, "token"),
      "TLS handshake failed (does the server require a client certificate?) (EPROTO)"],
  ])("%s is refused", async (_name, make, reason) => {
    const kube = await make();
    const err = await failure(kube.getPod("default", "db-0"));
    expect(err.message).toBe(`Cannot get pod "default/db-0" from Kubernetes API "${certApi.url}": ${reason}`);
  });
});

describe("lists", () => {
  let api: KubeApi;
  beforeAll(() => {
    api = startKubeApi(pki);
    for (const ns of ["a", "b", "c"]) {
      for (let i = 0; i < 3; i++) api.setPod(makePod({ namespace: ns, name: `p-${i}` }));
    }
    for (const name of ["s1", "s2"]) api.setStatefulSet(makeStatefulSet({ namespace: "a", name }));
  });
  afterAll(() => api.stop());
  afterEach(() => {
    api.failWith(undefined);
    api.onRequest = undefined;
    api.requests.length = 0;
  });
  const names = (items: { metadata: { namespace?: string; name: string } }[]) =>
    items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`);

  test("listPods follows continue to the last page", async () => {
    const kube = await clientFor(api, "token", {}, { pageSize: 4 });
    expect(names(await kube.listPods())).toEqual(["a/p-0", "a/p-1", "a/p-2", "b/p-0", "b/p-1", "b/p-2", "c/p-0", "c/p-1", "c/p-2"]);
    expect(api.requests.length).toBe(3);
    expect(api.requests[0]).toBe("GET /api/v1/pods?limit=4");
    expect(api.requests[1]).toStartWith("GET /api/v1/pods?limit=4&continue=");
  });

  test("listStatefulSets, one page", async () => {
    const kube = await clientFor(api);
    expect(names(await kube.listStatefulSets())).toEqual(["a/s1", "a/s2"]);
    expect(api.requests).toEqual(["GET /apis/apps/v1/statefulsets?limit=500"]);
  });

  test("a page failing mid-list throws", async () => {
    api.failWith(503, { after: 1 });
    const kube = await clientFor(api, "token", {}, { pageSize: 4 });
    const err = await failure(kube.listPods());
    expect(err.message).toBe(`Cannot list pods from Kubernetes API "${api.url}": HTTP 503 Service Unavailable: injected failure 503`);
    expect(api.requests.length).toBe(2);
  });

  test("an expired continue token throws", async () => {
    api.onRequest = (r) => r.includes("continue=") && api.expireContinueTokens();
    const kube = await clientFor(api, "token", {}, { pageSize: 4 });
    const err = await failure(kube.listPods());
    expect(err.status).toBe(410);
    expect(err.message).toStartWith(`Cannot list pods from Kubernetes API "${api.url}": HTTP 410 Gone: The provided continue parameter is too old`);
  });
});

test("stand-in: namespaced list with limit, as the API pages it", async () => {
  const api = startKubeApi(pki);
  for (const name of ["x", "y", "z"]) api.setPod(makePod({ namespace: "b", name }));
  api.setPod(makePod({ namespace: "c", name: "w" }));
  const get = async (q: string) =>
    (await fetch(`${api.url}/api/v1/namespaces/b/pods?${q}`, {
      headers: { Authorization: `Bearer ${api.token}` }, tls: { ca: readFileSync(pki.ca.cert, "utf8") },
    })).json() as Promise<{ kind: string; metadata: { continue?: string; remainingItemCount?: number }; items: { kind?: string; metadata: { name: string } }[] }>;
  const first = await get("limit=2");
  expect(first.kind).toBe("PodList");
  expect(first.items.map((p) => p.metadata.name)).toEqual(["x", "y"]);
  expect(first.items[0]!.kind).toBeUndefined();
  expect(first.metadata.remainingItemCount).toBe(1);
  const rest = await get(`limit=2&continue=${encodeURIComponent(first.metadata.continue!)}`);
  expect(rest.items.map((p) => p.metadata.name)).toEqual(["z"]);
  expect(rest.metadata.continue).toBeUndefined();
  api.stop();
});

describe("listPodsVersioned and watchPods", () => {
  let api: KubeApi;
  beforeAll(() => {
    api = startKubeApi(pki);
  });
  afterAll(() => api.stop());
  afterEach(() => {
    api.failWith(undefined);
    api.requests.length = 0;
  });
  type Seen = { type: string; name: string | undefined; rv: string | undefined };
  const watch = (kube: KubeClient, options: Omit<Parameters<KubeClient["watchPods"]>[0], "signal"> & { signal?: AbortSignal }, seen: Seen[]) =>
    kube.watchPods({ signal: new AbortController().signal, ...options }, (e) => {
      const meta = e.object.metadata as { name?: string; resourceVersion?: string };
      seen.push({ type: e.type, name: meta.name, rv: meta.resourceVersion });
    });
  const until = async (what: string, check: () => boolean) => {
    const deadline = Date.now() + 5000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await Bun.sleep(5);
    }
  };

  test("a field-selected list, all pages, with the list's resourceVersion", async () => {
    for (const i of [0, 1, 2]) api.setPod(makePod({ namespace: "v", name: `on-${i}`, nodeName: "node-a" }));
    api.setPod(makePod({ namespace: "v", name: "off", nodeName: "node-b" }));
    const kube = await clientFor(api, "token", {}, { pageSize: 2 });
    const list = await kube.listPodsVersioned({ fieldSelector: "spec.nodeName=node-a" });
    expect(list.items.map((p) => p.metadata.name)).toEqual(["on-0", "on-1", "on-2"]);
    expect(list.resourceVersion).toBe(api.resourceVersion);
    expect(api.requests[0]).toBe("GET /api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dnode-a");
    expect(api.requests[1]).toStartWith("GET /api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dnode-a&continue=");
  });

  test("a field label the API does not support: 400", async () => {
    const kube = await clientFor(api);
    const err = await failure(kube.listPodsVersioned({ fieldSelector: "spec.nodename=x" }));
    expect(err.status).toBe(400);
    expect(err.message).toBe(`Cannot list pods from Kubernetes API "${api.url}": HTTP 400 Bad Request: field label not supported: spec.nodename`);
    const werr = await failure(watch(kube, { resourceVersion: "0", fieldSelector: "spec.nodename=x" }, []));
    expect(werr.message).toBe(`Cannot watch pods from Kubernetes API "${api.url}": HTTP 400 Bad Request: field label not supported: spec.nodename`);
  });

  test("events after the resourceVersion in order, moves in and out of the selection, then live; timeoutSeconds ends it", async () => {
    const a = api.setPod(makePod({ namespace: "w", name: "a", nodeName: "n1" }));
    const b = api.setPod(makePod({ namespace: "w", name: "b", nodeName: "n2" }));
    const from = api.resourceVersion;
    const a2 = api.setPod({ ...a, metadata: { ...a.metadata, annotations: { x: "1" } } });
    const a3 = api.setPod({ ...a2, spec: { nodeName: "n2" } }); // out of n1: DELETED
    const b2 = api.setPod({ ...b, spec: { nodeName: "n1" } }); // into n1: ADDED
    api.setPod(makePod({ namespace: "w", name: "c", nodeName: "n2" })); // never n1's
    const kube = await clientFor(api);
    const seen: Seen[] = [];
    const t = Date.now();
    const done = watch(kube, { resourceVersion: from, fieldSelector: "spec.nodeName=n1", timeoutSeconds: 1 }, seen);
    await until("the replay", () => seen.length === 3);
    api.deletePod("w", "b"); // live
    await done;
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
    expect(seen).toEqual([
      { type: "MODIFIED", name: "a", rv: a2.metadata.resourceVersion },
      { type: "DELETED", name: "a", rv: a3.metadata.resourceVersion },
      { type: "ADDED", name: "b", rv: b2.metadata.resourceVersion },
      { type: "DELETED", name: "b", rv: api.resourceVersion },
    ]);
    expect(api.requests).toEqual([`GET /api/v1/pods?watch=true&resourceVersion=${from}&fieldSelector=spec.nodeName%3Dn1&timeoutSeconds=1`]);
    expect(api.openWatches).toBe(0);
  });

  test("resourceVersion 0: the current objects as ADDED; bookmarks only when allowed", async () => {
    const kube = await clientFor(api);
    api.setPod(makePod({ namespace: "z", name: "z0", nodeName: "nz" }));
    const plain: Seen[] = [];
    const marked: Seen[] = [];
    const ac = new AbortController();
    const w1 = watch(kube, { resourceVersion: "0", fieldSelector: "spec.nodeName=nz", signal: ac.signal }, plain);
    const w2 = watch(kube, { resourceVersion: "0", fieldSelector: "spec.nodeName=nz", allowWatchBookmarks: true, signal: ac.signal }, marked);
    await until("both watching", () => api.openWatches === 2 && plain.length === 1 && marked.length === 1);
    api.sendBookmarks();
    await until("the bookmark", () => marked.length === 2);
    ac.abort();
    await Promise.all([w1, w2]); // an abort ends the watch without an error
    expect(plain).toEqual([{ type: "ADDED", name: "z0", rv: expect.any(String) }]);
    expect(marked[1]).toEqual({ type: "BOOKMARK", name: undefined, rv: api.resourceVersion });
    await until("the streams are closed", () => api.openWatches === 0);
  });

  test("too old a resourceVersion: an ERROR event with 410 Expired, as the API sends it", async () => {
    const old = api.resourceVersion;
    api.setPod(makePod({ namespace: "e", name: "e0" }));
    api.compactWatchHistory();
    const res = await fetch(`${api.url}/api/v1/pods?watch=true&resourceVersion=${old}`, {
      headers: { Authorization: `Bearer ${api.token}` }, tls: { ca: readFileSync(pki.ca.cert, "utf8") },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    expect(JSON.parse(await res.text())).toEqual({
      type: "ERROR",
      object: {
        kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
        message: `too old resource version: ${old} (${api.resourceVersion})`, reason: "Expired", code: 410,
      },
    });
    const kube = await clientFor(api);
    const err = await failure(watch(kube, { resourceVersion: old }, []));
    expect(err.status).toBe(410);
    expect(err.message).toBe(`Cannot watch pods from Kubernetes API "${api.url}": watch ERROR event 410 Expired: too old resource version: ${old} (${api.resourceVersion})`);
  });

  test("a dropped stream, a refused watch, an unreachable API: KubeUnavailableError", async () => {
    const kube = await clientFor(api);
    const dropped = watch(kube, { resourceVersion: api.resourceVersion }, []);
    await until("watching", () => api.openWatches === 1);
    api.dropWatches();
    expect((await failure(dropped)).message).toBe(`Cannot watch pods from Kubernetes API "${api.url}": connection lost during the watch (ECONNRESET)`);

    const wrong = await clientFor(api, "token", { token: "wrong" });
    const refused = await failure(watch(wrong, { resourceVersion: "0" }, []));
    expect([refused.status, refused.message]).toEqual([401, `Cannot watch pods from Kubernetes API "${api.url}": HTTP 401 Unauthorized`]);

    const gone = startKubeApi(pki);
    const unreachable = await clientFor(gone);
    gone.stop();
    expect((await failure(watch(unreachable, { resourceVersion: "0" }, []))).message)
      .toBe(`Cannot watch pods from Kubernetes API "${gone.url}": connection refused (ECONNREFUSED)`);
  });

  test("a quiet watch outlives the request timeout: that bounds only the wait for the answer's headers", async () => {
    const kube = await clientFor(api, "token", {}, { timeoutMs: 50 });
    const seen: Seen[] = [];
    const ac = new AbortController();
    const done = watch(kube, { resourceVersion: api.resourceVersion, signal: ac.signal }, seen);
    await until("watching", () => api.openWatches === 1);
    await Bun.sleep(200);
    api.setPod(makePod({ namespace: "q", name: "q0" }));
    await until("the event", () => seen.length === 1);
    ac.abort();
    await done;
    expect(seen[0]).toMatchObject({ type: "ADDED", name: "q0" });
  });

  test("no answer to the watch in time", async () => {
    const slow = startKubeApi(pki);
    slow.delay(30_000);
    const kube = await clientFor(slow, "token", {}, { timeoutMs: 50 });
    const err = await failure(watch(kube, { resourceVersion: "0" }, []));
    expect(err.message).toBe(`Cannot watch pods from Kubernetes API "${slow.url}": no response within 50 ms`);
    slow.stop();
  });
});
