// Who may read the controller's dashboard and /metrics and the agent's /metrics, decided by a real
// kube-apiserver (TokenReview + SubjectAccessReview with the reviewing component's own identity from
// deploy/rbac.yaml, api.tokens) over HTTPS with a certificate made at start or given by file. Tokens are real service
// account tokens; the roles are deploy/rbac.yaml's kube-ipam-metrics-reader and kube-ipam-dashboard-viewer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Controller, startController } from "../support/controller.ts";
import { freePorts } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { type KubeApiServer, type KubeFaults, startKubeApiServer } from "../support/kube_apiserver.ts";
import { BINARY, fileNetConf, runCli, tempDir } from "../support/plugin.ts";

let api: KubeApiServer;
let dir: ReturnType<typeof tempDir>;
let confPath: string;
const tokens: Record<"controller" | "agent" | "prometheus" | "viewer" | "nobody" | "unused", string> = {} as never;

function kubeconfigOf(name: string, token: string, server?: string): string {
  return api.writeKubeconfig(join(dir.path, name), "token", { token, ...(server ? { server } : {}) });
}

/** A request to an endpoint with a self-signed certificate (verified separately below). */
async function get(url: string, opts: { token?: string; cookie?: string; accept?: string; method?: string; body?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.accept) headers.accept = opts.accept;
  if (opts.body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const res = await fetch(url, {
    method: opts.method ?? "GET", headers, body: opts.body, redirect: "manual", tls: { rejectUnauthorized: false },
  } as RequestInit);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

beforeAll(async () => {
  dir = tempDir();
  api = await startKubeApiServer();
  tokens.controller = api.tokens.controller;
  tokens.agent = api.tokens.agent;
  tokens.prometheus = await api.serviceAccountToken("monitoring", "prometheus", { clusterRole: "kube-ipam-metrics-reader", grants: "/metrics" });
  tokens.viewer = await api.serviceAccountToken("ops", "alice", { clusterRole: "kube-ipam-dashboard-viewer", grants: "/kube-ipam/dashboard" });
  tokens.nobody = await api.serviceAccountToken("default", "app");
  tokens.unused = await api.serviceAccountToken("default", "later");
  confPath = join(dir.path, "net.conf");
  writeFileSync(confPath, JSON.stringify(fileNetConf(dir.path)));
}, 120_000);
afterAll(async () => {
  await api?.stop();
  dir?.cleanup();
});

function started(c: Controller): Promise<void> {
  return eventually("the controller serves", () => c.log(), (log) => log.includes('"controller started"')).then(() => undefined);
}

describe("the controller's endpoint with --auth kubernetes (the default)", () => {
  let controller: Controller;
  let base: string;
  let faults: KubeFaults;
  beforeAll(async () => {
    faults = api.faults();
    controller = startController("c1", confPath, ["--kubeconfig", kubeconfigOf("controller-via-proxy", tokens.controller, faults.url), "--gc-interval", "1h"],
      undefined, { defaultAuth: true });
    await started(controller);
    base = `https://127.0.0.1:${controller.port}`;
  });
  afterAll(async () => {
    await controller?.kill();
    faults?.stop();
  });

  test("serves HTTPS with a certificate made at start: 127.0.0.1 and localhost in it, the fingerprint it logged", async () => {
    const logged = JSON.parse(controller.log().split("\n").find((l) => l.includes("self-signed certificate"))!);
    const pem = Bun.spawnSync(["sh", "-c", `openssl s_client -connect 127.0.0.1:${controller.port} </dev/null 2>/dev/null | openssl x509`]).stdout.toString();
    const x509 = (...args: string[]) => Bun.spawnSync(["openssl", "x509", "-noout", ...args], { stdin: Buffer.from(pem) }).stdout.toString();
    expect(x509("-fingerprint", "-sha256").trim()).toBe(`sha256 Fingerprint=${logged.sha256}`);
    expect(x509("-ext", "subjectAltName")).toContain("IP Address:127.0.0.1");
    expect(x509("-ext", "subjectAltName")).toContain("DNS:localhost");
    // Plain HTTP on that port gets no data.
    const plain = await fetch(`http://127.0.0.1:${controller.port}/metrics`).then((r) => r.text(), (e) => String(e));
    expect(plain).not.toContain("kube_ipam");
  });

  test("/healthz needs nothing; /metrics: no token 401, a bad token 401, a token without the right 403, Prometheus's 200", async () => {
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });

    const none = await get(`${base}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="kube-ipam"');
    expect(none.body).toBe("Unauthorized: no bearer token\n");

    const bad = await get(`${base}/metrics`, { token: `${tokens.nobody.slice(0, -4)}AAAA` });
    expect(bad.status).toBe(401);
    expect(bad.body).toStartWith("Unauthorized: the token is not valid");

    const nobody = await get(`${base}/metrics`, { token: tokens.nobody });
    expect(nobody.status).toBe(403);
    expect(nobody.body).toStartWith('Forbidden: user "system:serviceaccount:default:app" may not get /metrics');
    // A dashboard viewer may not scrape.
    expect((await get(`${base}/metrics`, { token: tokens.viewer })).status).toBe(403);

    const scrape = await get(`${base}/metrics`, { token: tokens.prometheus });
    expect(scrape.status).toBe(200);
    expect(scrape.body).toContain("kube_ipam_build_info");
    for (const refused of [none, bad, nobody]) expect(refused.body).not.toContain("kube_ipam");
  });

  test("the dashboard's JSON is not for every authenticated user (system:discovery grants /api/* to all): only its viewers", async () => {
    for (const token of [tokens.nobody, tokens.prometheus]) {
      const r = await get(`${base}/api/networks`, { token });
      expect(r.status).toBe(403);
      expect(r.body).toContain("may not get /kube-ipam/dashboard");
    }
    const viewer = await get(`${base}/api/networks`, { token: tokens.viewer });
    expect(viewer.status).toBe(200);
    expect(JSON.parse(viewer.body)).toBeDefined();
  });

  test("a browser logs in with a token: a login page, then an HttpOnly Secure SameSite=Strict cookie that opens the dashboard", async () => {
    const page = await get(`${base}/`, { accept: "text/html" });
    expect(page.status).toBe(401);
    expect(page.body).toContain('<form method="post" action="/login">');
    expect(page.body).not.toContain("app.js");

    const refused = await get(`${base}/login`, { method: "POST", body: `token=${encodeURIComponent(tokens.nobody)}` });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("set-cookie")).toBeNull();
    expect(refused.body).toContain("may not get /kube-ipam/dashboard");

    const login = await get(`${base}/login`, { method: "POST", body: `token=${encodeURIComponent(tokens.viewer)}` });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/");
    const cookie = login.headers.get("set-cookie")!;
    expect(cookie.split("; ").slice(1).sort()).toEqual(["HttpOnly", "Path=/", "SameSite=Strict", "Secure"]);
    const dashboard = await get(`${base}/`, { accept: "text/html", cookie: cookie.split(";")[0]! });
    expect(dashboard.status).toBe(200);
    expect(dashboard.body).toContain("app.js");
    expect((await get(`${base}/api/networks`, { cookie: cookie.split(";")[0]! })).status).toBe(200);

    // A malformed cookie is no token; a login posted from another site's page is refused.
    expect((await get(`${base}/metrics`, { cookie: "kube-ipam-token=%" })).status).toBe(401);
    const crossSite = await fetch(`${base}/login`, {
      method: "POST", body: `token=${encodeURIComponent(tokens.viewer)}`, redirect: "manual", tls: { rejectUnauthorized: false },
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    } as RequestInit);
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get("set-cookie")).toBeNull();

    const logout = await get(`${base}/logout`, { method: "POST", cookie: cookie.split(";")[0]! });
    expect(logout.status).toBe(303);
    expect(logout.headers.get("set-cookie")).toStartWith("kube-ipam-token=; Path=/; Max-Age=0");
  });

  test("each kind of refusal is logged once, naming status, user and URL; nothing is logged for an allowed request", async () => {
    for (let i = 0; i < 5; i++) expect((await get(`${base}/metrics`, { token: tokens.nobody })).status).toBe(403);
    const refusals = controller.log().split("\n").filter((l) => l.includes('"refused a request"')).map((l) => JSON.parse(l));
    const forbidden = refusals.filter((r) => r.status === 403 && r.url === "/metrics" && r.user === "system:serviceaccount:default:app");
    expect(forbidden.length).toBe(1);
    expect(refusals.some((r) => r.user === "system:serviceaccount:monitoring:prometheus" && r.url === "/metrics")).toBe(false);
  });

  test("an API that cannot check a new token: 503, no data; tokens checked before stay served until their cache ends", async () => {
    faults.failWith(503);
    try {
      const r = await get(`${base}/metrics`, { token: tokens.unused });
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("1");
      expect(r.body).toBe("Unavailable: cannot check the token with the Kubernetes API now\n");
      // What the API said is in the log, not in the answer to a client without a valid token.
      expect(controller.log()).toContain("create a TokenReview");
      expect((await get(`${base}/metrics`, { token: tokens.prometheus })).status).toBe(200);
    } finally {
      faults.failWith(undefined);
    }
    expect((await get(`${base}/metrics`, { token: tokens.unused })).status).toBe(403);
  });
});

describe("the controller's endpoint, other ways", () => {
  test("--tls-cert-file and --tls-private-key-file: the given certificate is served", async () => {
    const cert = join(dir.path, "tls.crt");
    const key = join(dir.path, "tls.key");
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=given", "-addext", "subjectAltName=IP:127.0.0.1"], { stderr: "pipe" });
    expect(made.exitCode).toBe(0);
    const c = startController("c2", confPath, ["--kubeconfig", kubeconfigOf("controller", tokens.controller), "--gc-interval", "1h",
      "--tls-cert-file", cert, "--tls-private-key-file", key], undefined, { defaultAuth: true });
    try {
      await started(c);
      const res = await fetch(`https://127.0.0.1:${c.port}/metrics`, {
        headers: { authorization: `Bearer ${tokens.prometheus}` }, tls: { ca: await Bun.file(cert).text() },
      } as RequestInit);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("kube_ipam_build_info");
      expect(c.log()).not.toContain("self-signed");
      const anonymous = await fetch(`https://127.0.0.1:${c.port}/metrics`, { tls: { ca: await Bun.file(cert).text() } } as RequestInit);
      expect(anonymous.status).toBe(401);
    } finally {
      await c.kill();
    }
  });

  test("bad TLS flags are refused before serving, naming the flag and file", async () => {
    const kubeconfig = kubeconfigOf("controller", tokens.controller);
    const one = await runCli(["controller", "--conf", confPath, "--kubeconfig", kubeconfig, "--tls-cert-file", confPath]);
    expect(one.exitCode).toBe(2);
    expect(one.stderr).toContain("--tls-cert-file and --tls-private-key-file go together");
    const missing = join(dir.path, "missing.crt");
    const gone = await runCli(["controller", "--conf", confPath, "--kubeconfig", kubeconfig, "--tls-cert-file", missing, "--tls-private-key-file", missing]);
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr).toContain(`--tls-cert-file "${missing}" cannot be read: ENOENT`);
    const notPem = await runCli(["controller", "--conf", confPath, "--kubeconfig", kubeconfig, "--tls-cert-file", confPath, "--tls-private-key-file", confPath]);
    expect(notPem.exitCode).toBe(2);
    expect(notPem.stderr).toContain(`--tls-cert-file "${confPath}" is not PEM`);
    const auth = await runCli(["controller", "--conf", confPath, "--kubeconfig", kubeconfig, "--auth", "basic"]);
    expect(auth.exitCode).toBe(2);
    expect(auth.stderr).toContain('--auth "basic" is not "kubernetes" or "none"');
  });

  test("--auth none is served to all over plain HTTP, and says so in a warning at start", async () => {
    const c = startController("c3", confPath, ["--kubeconfig", kubeconfigOf("controller", tokens.controller), "--gc-interval", "1h", "--auth", "none"]);
    try {
      await started(c);
      expect(await c.metrics()).toContain("kube_ipam_build_info");
      const warning = c.log().split("\n").find((l) => l.includes("--auth none"));
      expect(JSON.parse(warning!)).toMatchObject({ level: "warn", msg: "--auth none: /metrics and the dashboard served to anyone who can connect, without authentication" });
    } finally {
      await c.kill();
    }
  });
});

describe("the agent's /metrics", () => {
  test("with its own identity (--kubeconfig): HTTPS, Prometheus's token 200, none 401, another 403", async () => {
    const [port] = freePorts(1);
    const proc = Bun.spawn([BINARY, "agent", "--socket", join(dir.path, "agent", "agent.sock"), "--metrics-addr", `127.0.0.1:${port}`,
      "--kubeconfig", kubeconfigOf("agent", tokens.agent)], { stdout: "ignore", stderr: "pipe" });
    try {
      const base = `https://127.0.0.1:${port}`;
      await eventually("the agent serves", () => get(`${base}/healthz`).then((r) => r.status, () => 0), (s) => s === 200);
      expect((await get(`${base}/metrics`)).status).toBe(401);
      expect((await get(`${base}/metrics`, { token: tokens.nobody })).status).toBe(403);
      const scrape = await get(`${base}/metrics`, { token: tokens.prometheus });
      expect(scrape.status).toBe(200);
      expect(scrape.body).toContain("kube_ipam_cni_request_duration_seconds");
    } finally {
      proc.kill();
      await proc.exited;
    }
  });

  test("without an identity, --metrics-addr needs --auth none by name", async () => {
    const r = await runCli(["agent", "--socket", join(dir.path, "agent2", "agent.sock"), "--metrics-addr", "127.0.0.1:1"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("--auth kubernetes (the default) needs a Kubernetes API to check tokens with: pass --kubeconfig FILE");
    expect(r.stderr).toContain("or pass --auth none");
    const stray = await runCli(["agent", "--socket", join(dir.path, "agent3", "agent.sock"), "--auth", "none"]);
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toContain("--auth is a flag of the agent's /metrics endpoint: add --metrics-addr HOST:PORT");
  });
});
