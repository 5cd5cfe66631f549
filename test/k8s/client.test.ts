// The Kubernetes client against a real kube-apiserver (test/support/kube_apiserver.ts): gets, lists with
// paging and field selectors, watches and bookmarks, Status errors, tokens, client certificates and RBAC
// denials as the server itself answers them, each read as the component that makes it: a pod GET as the plugin,
// gc's lists as the controller, the pod cache's field-selected lists and watches as the agent (deploy/rbac.yaml
// grants each only those). Faults the server cannot be made to show on demand (a 500, an
// answer held back, a cut stream, a TLS-level certificate demand) come from the proxy in front of it
// (`api.faults()`); docs/testing.md lists them.
import { afterAll, afterEach, beforeAll, describe, expect, setSystemTime, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient, type KubeClientOptions, KubeUnavailableError } from "../../src/k8s/client.ts";
import { type KubeConfig, loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import type { Pod } from "../../src/k8s/types.ts";
import { freePorts } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import {
  type KubeApiServer, type KubeconfigVariant, type KubeFaults, makePod, makeStatefulSet, NO_RIGHTS_USER, PLUGIN_USER,
  startKubeApiServer, type WriteKubeconfigOptions,
} from "../support/kube_apiserver.ts";

let api: KubeApiServer;
let faults: KubeFaults;
let dir: string;
let n = 0;

beforeAll(async () => {
  api = await startKubeApiServer();
  faults = api.faults();
  dir = mkdtempSync(join(tmpdir(), "kube-ipam-client-"));
}, 90_000);

afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  faults.failWith(undefined);
  faults.delay(0);
  faults.onRequest = undefined;
  faults.requests.length = 0;
  api.clearRequests();
  setSystemTime();
});

async function configFor(variant: KubeconfigVariant, options?: WriteKubeconfigOptions): Promise<KubeConfig> {
  return loadKubeConfig(api.writeKubeconfig(join(dir, `k${++n}`), variant, options));
}

async function clientFor(variant: KubeconfigVariant = "token", options?: WriteKubeconfigOptions,
  clientOptions?: KubeClientOptions): Promise<KubeClient> {
  return new KubeClient(await configFor(variant, options), clientOptions);
}

/** A client that talks to the server through the fault proxy (token only: certificates cannot pass it). */
const viaFaults = (clientOptions?: KubeClientOptions, options: WriteKubeconfigOptions = {}) =>
  clientFor("token", { ...options, server: faults.url }, clientOptions);

async function failure(p: Promise<unknown>): Promise<KubeUnavailableError> {
  const err = await p.then(() => undefined, (e) => e);
  expect(err).toBeInstanceOf(KubeUnavailableError);
  return err;
}

/** A loopback URL nothing listens on: an API server that is down. */
const downUrl = () => `https://127.0.0.1:${freePorts(1)[0]}`;
const rv = (o: { metadata: { resourceVersion?: string } }) => BigInt(o.metadata.resourceVersion!);

describe("getPod", () => {
  test("a pod is one GET and comes back as the API has it", async () => {
    const sts = await api.setStatefulSet(makeStatefulSet({ name: "web", replicas: 2 }));
    const stored = await api.setPod(makePod({
      name: "web-0", ownerStatefulSet: sts, nodeName: "node-2", annotations: { "kube-ipam.ip": "10.188.0.218" },
    }));
    const kube = await clientFor();
    api.clearRequests();
    const pod = await kube.getPod("default", "web-0");
    expect(api.requests).toEqual(["GET /api/v1/namespaces/default/pods/web-0"]);
    expect(pod).toEqual({ kind: "Pod", apiVersion: "v1", ...stored });
    expect(pod?.metadata.annotations?.["kube-ipam.ip"]).toBe("10.188.0.218");
    expect(pod?.metadata.ownerReferences?.[0]).toMatchObject({ kind: "StatefulSet", name: "web", uid: sts.metadata.uid, controller: true });
    expect(pod?.spec?.nodeName).toBe("node-2");
  });

  test.each([
    ["no such pod", (k: KubeClient) => k.getPod("default", "nobody")],
    ["no such namespace", (k: KubeClient) => k.getPod("nowhere", "web-0")],
  ])("%s: undefined", async (_name, get) => {
    expect(await get(await clientFor())).toBeUndefined();
  });

  test("a deleted pod is gone", async () => {
    await api.setPod(makePod({ name: "gone-0" }));
    const kube = await clientFor();
    expect(await kube.getPod("default", "gone-0")).toBeDefined();
    expect(await api.deletePod("default", "gone-0")).toBe(true);
    expect(await kube.getPod("default", "gone-0")).toBeUndefined();
  });

  const forbidden = `pods "web-0" is forbidden: User "${NO_RIGHTS_USER}" cannot get resource "pods" in API group "" in the namespace "default"`;
  const cases: [string, () => Promise<KubeClient>, () => string, number | undefined][] = [
    ["wrong token", () => clientFor("token", { token: "wrong" }), () => "HTTP 401 Unauthorized", 401],
    ["a user RBAC grants nothing", () => clientFor("token", { token: api.noRightsToken }), () => `HTTP 403 Forbidden: ${forbidden}`, 403],
    // A wrong path prefix must not read as "no such pod": to the plugin it is a path it may not get,
    ["a wrong path prefix", () => clientFor("token", { server: `${api.url}/wrong/prefix` }),
      () => `HTTP 403 Forbidden: forbidden: User "${PLUGIN_USER}" cannot get path ` +
        '"/wrong/prefix/api/v1/namespaces/default/pods/web-0"', 403],
    // and to a user with every right a 404 that is not the NotFound of this pod (a plain-text page).
    ["a wrong path prefix, as cluster-admin", () => clientFor("client-cert", { server: `${api.url}/wrong/prefix`, client: api.adminCert }),
      () => "HTTP 404 Not Found", 404],
    ["CA that did not sign the server", async () => new KubeClient({ ...await configFor("token"), ca: readFileSync(api.pki.otherCa.cert, "utf8") }),
      () => "server certificate not trusted: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE): check certificate-authority and server",
      undefined],
    // Faults, from the proxy:
    ["server error", async () => (faults.failWith(500), viaFaults()), () => "HTTP 500 Internal Server Error: injected failure 500", 500],
    ["no answer in time", async () => (faults.delay(30_000), viaFaults({ timeoutMs: 50 })), () => "no response within 50 ms", undefined],
  ];
  test.each(cases)("%s: KubeUnavailableError", async (_name, make, reason, status) => {
    const kube = await make();
    const err = await failure(kube.getPod("default", "web-0"));
    expect(err.name).toBe("KubeUnavailableError");
    expect(err.server).toBe(kube.server);
    expect(err.status).toBe(status);
    expect(err.message).toBe(`Cannot get pod "default/web-0" from Kubernetes API "${kube.server}": ${reason()}`);
  });

  test("the 404 of a wrong path is the server's own: not a Status, so not a NotFound", async () => {
    const res = await fetch(`${api.url}/wrong/prefix/api/v1/namespaces/default/pods/web-0`, {
      tls: { ca: readFileSync(api.pki.ca.cert, "utf8"), cert: readFileSync(api.adminCert.cert, "utf8"), key: readFileSync(api.adminCert.key, "utf8") },
    });
    expect([res.status, res.headers.get("content-type"), await res.text()]).toEqual([404, "text/plain; charset=utf-8", "404 page not found\n"]);
  });

  test("server down: KubeUnavailableError", async () => {
    const url = downUrl();
    const kube = await clientFor("token", { server: url });
    const err = await failure(kube.getPod("default", "web-0"));
    expect(err.message).toBe(`Cannot get pod "default/web-0" from Kubernetes API "${url}": connection refused (ECONNREFUSED)`);
    expect((err.cause as { code?: string }).code).toBe("ECONNREFUSED");
  });

  test("insecure-skip-tls-verify without a CA", async () => {
    const kube = new KubeClient({ ...await configFor("token"), ca: undefined, insecureSkipTLSVerify: true });
    expect(await kube.getPod("default", "nobody")).toBeUndefined();
  });

  test("a rotated tokenFile is read again after a minute", async () => {
    const config = await configFor("token-file-paths", { token: "old" });
    const kube = new KubeClient(config);
    expect((await failure(kube.getPod("default", "nobody"))).status).toBe(401);
    writeFileSync(config.tokenFile!, api.token);
    setSystemTime(new Date(Date.now() + 61_000));
    expect(await kube.getPod("default", "nobody")).toBeUndefined();
  });
});

describe("client certificates", () => {
  test.each([
    ["embedded", "data"],
    ["files beside the kubeconfig", "paths"],
  ] as const)("%s", async (_name, form) => {
    await api.setPod(makePod({ name: "db-0" }));
    const kube = await clientFor("client-cert", { form });
    expect((await kube.getPod("default", "db-0"))?.metadata.name).toBe("db-0");
  });

  // kube-apiserver asks for a certificate in the handshake but does not demand one: it judges it afterwards.
  test("a certificate from another CA: 401 Unauthorized", async () => {
    const kube = await clientFor("client-cert", { client: api.pki.strangerClient });
    const err = await failure(kube.getPod("default", "db-0"));
    expect([err.status, err.message]).toEqual([401, `Cannot get pod "default/db-0" from Kubernetes API "${api.url}": HTTP 401 Unauthorized`]);
  });

  test("no certificate and no token: anonymous, and RBAC refuses it", async () => {
    const kube = new KubeClient({ ...await configFor("client-cert"), cert: undefined, key: undefined });
    const err = await failure(kube.getPod("default", "db-0"));
    expect(err.status).toBe(403);
    expect(err.message).toBe(`Cannot get pod "default/db-0" from Kubernetes API "${api.url}": HTTP 403 Forbidden: ` +
      'pods "db-0" is forbidden: User "system:anonymous" cannot get resource "pods" in API group "" in the namespace "default"');
  });

  // A TLS-terminating front that demands a certificate in the handshake (kube-apiserver never does): the proxy.
  test.each([
    ["a certificate from another CA", (url: string) => clientFor("client-cert", { client: api.pki.strangerClient, server: url }),
      "connection reset by the server (with client certificates: is this one signed by a CA the server trusts?) (ECONNRESET)"],
    ["no certificate", (url: string) => clientFor("token", { server: url }),
      "TLS handshake failed (does the server require a client certificate?) (EPROTO)"],
  ])("%s, refused in the handshake by a front that demands one", async (_name, make, reason) => {
    const front = api.faults({ requireClientCert: true });
    try {
      const kube = await make(front.url);
      const err = await failure(kube.getPod("default", "db-0"));
      expect(err.message).toBe(`Cannot get pod "default/db-0" from Kubernetes API "${front.url}": ${reason}`);
    } finally {
      front.stop();
    }
  });
});

describe("lists", () => {
  const namespaces = ["list-a", "list-b", "list-c"];
  beforeAll(async () => {
    for (const ns of namespaces) {
      for (let i = 0; i < 3; i++) await api.setPod(makePod({ namespace: ns, name: `p-${i}` }));
    }
    for (const name of ["s1", "s2"]) await api.setStatefulSet(makeStatefulSet({ namespace: "list-a", name }));
  });
  const names = (items: { metadata: { namespace?: string; name: string } }[]) =>
    items.filter((o) => namespaces.includes(o.metadata.namespace!)).map((o) => `${o.metadata.namespace}/${o.metadata.name}`);

  test("listPods follows continue to the last page", async () => {
    const total = (await api.listPods()).items.length;
    const kube = await clientFor("token", { identity: "controller" }, { pageSize: 4 });
    const pods = await kube.listPods();
    expect(pods.length).toBe(total);
    expect(names(pods)).toEqual(["list-a/p-0", "list-a/p-1", "list-a/p-2", "list-b/p-0", "list-b/p-1", "list-b/p-2", "list-c/p-0", "list-c/p-1", "list-c/p-2"]);
    expect(api.requests.length).toBe(Math.ceil(total / 4));
    expect(api.requests[0]).toBe("GET /api/v1/pods?limit=4");
    expect(api.requests[1]).toStartWith("GET /api/v1/pods?limit=4&continue=");
  });

  test("listStatefulSets, one page", async () => {
    const kube = await clientFor("token", { identity: "controller" });
    expect(names(await kube.listStatefulSets())).toEqual(["list-a/s1", "list-a/s2"]);
    expect(api.requests).toEqual(["GET /apis/apps/v1/statefulsets?limit=500"]);
  });

  test("a page failing mid-list throws", async () => {
    faults.failWith(503, { after: 1 });
    const kube = await viaFaults({ pageSize: 4 }, { identity: "controller" });
    const err = await failure(kube.listPods());
    expect(err.message).toBe(`Cannot list pods from Kubernetes API "${faults.url}": HTTP 503 Service Unavailable: injected failure 503`);
    expect(faults.requests.length).toBe(2);
  });

  test("a continue token from before an etcd compaction: the server's 410 Expired, and the list throws", async () => {
    let expired = false;
    // Between the first page and the second, etcd is compacted (and the API server restarted, so that its
    // watch cache keeps no snapshot of the first page's version either).
    faults.onRequest = async (r) => {
      if (r.includes("continue=") && !expired) {
        expired = true;
        await api.expireContinueTokens();
      }
    };
    const kube = await viaFaults({ pageSize: 4, timeoutMs: 30_000 }, { identity: "controller" });
    const err = await failure(kube.listPods());
    expect(expired).toBe(true);
    expect(err.status).toBe(410);
    expect(err.message).toBe(`Cannot list pods from Kubernetes API "${faults.url}": HTTP 410 Gone: The provided continue parameter is too old ` +
      "to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this " +
      "response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects " +
      "that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
  }, 60_000);

  test("the API's paging of a namespaced list, as the client relies on it", async () => {
    const get = async (q: string) =>
      (await fetch(`${api.url}/api/v1/namespaces/list-b/pods?${q}`, {
        headers: { Authorization: `Bearer ${api.tokens.agent}` }, tls: { ca: readFileSync(api.pki.ca.cert, "utf8") },
      })).json() as Promise<{ kind: string; metadata: { continue?: string; remainingItemCount?: number }; items: { kind?: string; metadata: { name: string } }[] }>;
    const first = await get("limit=2");
    expect(first.kind).toBe("PodList");
    expect(first.items.map((p) => p.metadata.name)).toEqual(["p-0", "p-1"]);
    expect(first.items[0]!.kind).toBeUndefined();
    expect(first.metadata.remainingItemCount).toBe(1);
    const rest = await get(`limit=2&continue=${encodeURIComponent(first.metadata.continue!)}`);
    expect(rest.items.map((p) => p.metadata.name)).toEqual(["p-2"]);
    expect(rest.metadata.continue).toBeUndefined();
  });
});

// The node agent's pod cache reads these (src/k8s/pod_cache.ts): as the agent.
describe("listPodsVersioned and watchPods", () => {
  type Seen = { type: string; name: string | undefined; rv: string | undefined };
  const watch = (kube: KubeClient, options: Omit<Parameters<KubeClient["watchPods"]>[0], "signal"> & { signal?: AbortSignal }, seen: Seen[]) =>
    kube.watchPods({ signal: new AbortController().signal, ...options }, (e) => {
      const meta = e.object.metadata as { name?: string; resourceVersion?: string };
      seen.push({ type: e.type, name: meta.name, rv: meta.resourceVersion });
    });
  const until = (what: string, check: () => boolean) => eventually(what, check, (ok) => ok, { withinMs: 10_000, everyMs: 5 });

  test("a field-selected list, all pages, with the list's resourceVersion", async () => {
    let last: Pod | undefined;
    for (const i of [0, 1, 2]) last = await api.setPod(makePod({ namespace: "v", name: `on-${i}`, nodeName: "node-va" }));
    await api.setPod(makePod({ namespace: "v", name: "off", nodeName: "node-vb" }));
    const kube = await clientFor("token", { identity: "agent" }, { pageSize: 2 });
    const list = await kube.listPodsVersioned({ fieldSelector: "spec.nodeName=node-va" });
    expect(list.items.map((p) => p.metadata.name)).toEqual(["on-0", "on-1", "on-2"]);
    // A consistent list: read at the current revision, at or after the last change.
    expect(BigInt(list.resourceVersion)).toBeGreaterThanOrEqual(rv(last!));
    expect(api.requests[0]).toBe("GET /api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dnode-va");
    expect(api.requests[1]).toStartWith("GET /api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dnode-va&continue=");
  });

  test("a field label the API does not support: 400", async () => {
    const kube = await clientFor("token", { identity: "agent" });
    const err = await failure(kube.listPodsVersioned({ fieldSelector: "spec.nodename=x" }));
    expect(err.status).toBe(400);
    expect(err.message).toBe(`Cannot list pods from Kubernetes API "${api.url}": HTTP 400 Bad Request: field label not supported: spec.nodename`);
    const werr = await failure(watch(kube, { resourceVersion: "0", fieldSelector: "spec.nodename=x" }, []));
    expect(werr.message).toBe(`Cannot watch pods from Kubernetes API "${api.url}": HTTP 400 Bad Request: field label not supported: spec.nodename`);
  });

  test("events after the resourceVersion in order, moves in and out of the selection, then live; timeoutSeconds ends it", async () => {
    // The selection: pods on n1 that have not failed. A pod enters it when bound to n1, leaves it when it fails.
    const selector = "spec.nodeName=n1,status.phase!=Failed";
    const a = await api.setPod(makePod({ namespace: "w", name: "a", nodeName: "n1" }));
    const b = await api.setPod(makePod({ namespace: "w", name: "b", nodeName: "", phase: "Pending" })); // not scheduled yet
    const from = (await api.getPod("w", "b"))!.metadata.resourceVersion!;
    const a2 = await api.setPod({ ...a, metadata: { ...a.metadata, annotations: { x: "1" } } });
    const a3 = await api.setPod({ ...a2, status: { ...a2.status, phase: "Failed" } }); // out of the selection: DELETED
    const b2 = await api.setPod({ ...b, spec: { ...b.spec, nodeName: "n1" } }); // bound to n1: into it, ADDED
    await api.setPod(makePod({ namespace: "w", name: "c", nodeName: "n2" })); // never in it
    const kube = await clientFor("token", { identity: "agent" });
    const seen: Seen[] = [];
    const t = Date.now();
    const done = watch(kube, { resourceVersion: from, fieldSelector: selector, timeoutSeconds: 2 }, seen);
    await until("the replay", () => seen.length === 3);
    await api.deletePod("w", "b"); // live: marked deleted (grace period 0), then removed
    await done;
    expect(Date.now() - t).toBeGreaterThanOrEqual(1900);
    expect(seen.slice(0, 3)).toEqual([
      { type: "MODIFIED", name: "a", rv: a2.metadata.resourceVersion },
      { type: "DELETED", name: "a", rv: a3.metadata.resourceVersion },
      { type: "ADDED", name: "b", rv: b2.metadata.resourceVersion },
    ]);
    expect(seen.slice(3).map((e) => e.type)).toEqual(["MODIFIED", "DELETED"]);
    expect(BigInt(seen[3]!.rv!)).toBeGreaterThan(rv(b2));
    expect(BigInt(seen[4]!.rv!)).toBeGreaterThan(BigInt(seen[3]!.rv!));
    expect(api.requests).toEqual([`GET /api/v1/pods?watch=true&resourceVersion=${from}&fieldSelector=${encodeURIComponent(selector)}&timeoutSeconds=2`]);
    await until("the stream is closed", () => api.openWatches === 0);
  });

  test("resourceVersion 0: the current objects as ADDED, then changes", async () => {
    const kube = await clientFor("token", { identity: "agent" });
    await api.setPod(makePod({ namespace: "z", name: "z0", nodeName: "nz" }));
    const seen: Seen[] = [];
    const ac = new AbortController();
    const done = watch(kube, { resourceVersion: "0", fieldSelector: "spec.nodeName=nz", signal: ac.signal }, seen);
    await until("the current pods", () => seen.length === 1);
    // Created (Pending), then its status written (Running): two events, as when a kubelet starts a pod.
    const z1 = await api.setPod(makePod({ namespace: "z", name: "z1", nodeName: "nz" }));
    await until("the changes", () => seen.length >= 3);
    ac.abort();
    await done; // an abort ends the watch without an error
    expect(seen).toEqual([
      { type: "ADDED", name: "z0", rv: expect.any(String) },
      { type: "ADDED", name: "z1", rv: expect.any(String) },
      { type: "MODIFIED", name: "z1", rv: z1.metadata.resourceVersion },
    ]);
    await until("the stream is closed", () => api.openWatches === 0);
  });

  test("bookmarks only when allowed: the version of a change outside the selection", async () => {
    const kube = await clientFor("token", { identity: "agent" });
    const from = (await api.listPods()).resourceVersion;
    const plain: Seen[] = [];
    const marked: Seen[] = [];
    // The server sends a bookmark 2 s before a watch's timeout, when pods changed since the watch began.
    const options = { resourceVersion: from, fieldSelector: "spec.nodeName=nb", timeoutSeconds: 4 };
    const w1 = watch(kube, options, plain);
    const w2 = watch(kube, { ...options, allowWatchBookmarks: true }, marked);
    await until("both watching", () => api.openWatches >= 2);
    const elsewhere = await api.setPod(makePod({ namespace: "z", name: "b1", nodeName: "other" }));
    await Promise.all([w1, w2]); // both ended by the server at timeoutSeconds
    expect(plain).toEqual([]);
    // One or more (the server may send the same bookmark again a moment later), all at that version.
    expect(marked.length).toBeGreaterThanOrEqual(1);
    for (const e of marked) expect(e).toEqual({ type: "BOOKMARK", name: undefined, rv: elsewhere.metadata.resourceVersion });
    await until("the streams are closed", () => api.openWatches === 0);
  }, 20_000);

  test("too old a resourceVersion (the API server restarted since): an ERROR event with 410 Expired", async () => {
    const old = (await api.listPods()).resourceVersion;
    await api.setPod(makePod({ namespace: "e", name: "e0" }));
    await api.restart(); // its watch cache starts again at the current revision
    const res = await fetch(`${api.url}/api/v1/pods?watch=true&resourceVersion=${old}`, {
      headers: { Authorization: `Bearer ${api.tokens.agent}` }, tls: { ca: readFileSync(api.pki.ca.cert, "utf8") },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    const event = JSON.parse(await res.text());
    expect(event).toEqual({
      type: "ERROR",
      object: {
        kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
        message: expect.stringMatching(new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`)), reason: "Expired", code: 410,
      },
    });
    const kube = await clientFor("token", { identity: "agent" });
    const err = await failure(watch(kube, { resourceVersion: old }, []));
    expect(err.status).toBe(410);
    expect(err.message).toMatch(new RegExp(`^Cannot watch pods from Kubernetes API "${api.url}": watch ERROR event 410 Expired: too old resource version: ${old} \\(\\d+\\)$`));
  }, 30_000);

  test("a dropped stream, a refused watch, an unreachable API: KubeUnavailableError", async () => {
    const cut = await viaFaults({}, { identity: "agent" });
    const dropped = watch(cut, { resourceVersion: "0" }, []);
    await until("watching", () => faults.openWatches === 1);
    faults.dropWatches();
    expect((await failure(dropped)).message).toBe(`Cannot watch pods from Kubernetes API "${faults.url}": connection lost during the watch (ECONNRESET)`);

    const wrong = await clientFor("token", { token: "wrong" });
    const refused = await failure(watch(wrong, { resourceVersion: "0" }, []));
    expect([refused.status, refused.message]).toEqual([401, `Cannot watch pods from Kubernetes API "${api.url}": HTTP 401 Unauthorized`]);

    const denied = await failure(watch(await clientFor("token", { token: api.noRightsToken }), { resourceVersion: "0" }, []));
    expect([denied.status, denied.message]).toEqual([403, `Cannot watch pods from Kubernetes API "${api.url}": HTTP 403 Forbidden: ` +
      `pods is forbidden: User "${NO_RIGHTS_USER}" cannot watch resource "pods" in API group "" at the cluster scope`]);

    const url = downUrl();
    const unreachable = await clientFor("token", { server: url });
    expect((await failure(watch(unreachable, { resourceVersion: "0" }, []))).message)
      .toBe(`Cannot watch pods from Kubernetes API "${url}": connection refused (ECONNREFUSED)`);
  });

  test("a quiet watch outlives the request timeout: that bounds only the wait for the answer's headers", async () => {
    const kube = await clientFor("token", { identity: "agent" }, { timeoutMs: 50 });
    const seen: Seen[] = [];
    const ac = new AbortController();
    const from = (await api.listPods()).resourceVersion;
    const done = watch(kube, { resourceVersion: from, fieldSelector: "spec.nodeName=nq", signal: ac.signal }, seen);
    await until("watching", () => api.openWatches === 1);
    await Bun.sleep(200); // quiet for four times the request timeout
    await api.setPod(makePod({ namespace: "q", name: "q0", nodeName: "nq" }));
    await until("the event", () => seen.length >= 1);
    ac.abort();
    await done;
    expect(seen[0]).toMatchObject({ type: "ADDED", name: "q0" });
  });

  test("no answer to the watch in time", async () => {
    faults.delay(30_000);
    const kube = await viaFaults({ timeoutMs: 50 }, { identity: "agent" });
    const err = await failure(watch(kube, { resourceVersion: "0" }, []));
    expect(err.message).toBe(`Cannot watch pods from Kubernetes API "${faults.url}": no response within 50 ms`);
  });
});
