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
