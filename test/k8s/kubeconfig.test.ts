import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inClusterConfig, type KubeConfig, KubeConfigError, loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";

let pki: TestPki;
const dir = mkdtempSync(join(tmpdir(), "kube-ipam-kubeconfig-")); // at load: the tables below name paths in it
let CA: string;
let CERT: string;
let KEY: string;
const b64 = (s: string) => Buffer.from(s).toString("base64");

beforeAll(() => {
  pki = makeTestPki();
  CA = readFileSync(pki.ca.cert, "utf8");
  CERT = readFileSync(pki.client.cert, "utf8");
  KEY = readFileSync(pki.client.key, "utf8");
  mkdirSync(join(dir, "pki"));
  copyFileSync(pki.ca.cert, join(dir, "pki", "ca.crt"));
  copyFileSync(pki.client.cert, join(dir, "pki", "client.crt"));
  copyFileSync(pki.client.key, join(dir, "pki", "client.key"));
  writeFileSync(join(dir, "pki", "token"), "file-token\n");
  writeFileSync(join(dir, "pki", "not-pem"), "hello\n");
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

/** A kubeconfig with one cluster "c", one user "u", one context "ctx"; lines are indented into place. */
function kubeconfig(cluster: string[], user: string[], head = "current-context: ctx"): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    head,
    "clusters:",
    "- name: c",
    "  cluster:",
    ...cluster.map((l) => `    ${l}`),
    "contexts:",
    "- name: ctx",
    "  context: {cluster: c, user: u}",
    "users:",
    "- name: u",
    "  user:",
    ...user.map((l) => `    ${l}`),
    "",
  ].join("\n");
}

let n = 0;
/** Writes text (after filling CA_DATA, CERT_DATA, KEY_DATA) into a new file in dir, returns its path. */
function write(text: string): string {
  const path = join(dir, `kubeconfig-${++n}`);
  writeFileSync(path, text.replaceAll("CA_DATA", b64(CA)).replaceAll("CERT_DATA", b64(CERT)).replaceAll("KEY_DATA", b64(KEY)));
  return path;
}

const SERVER = "server: https://127.0.0.1:6443";

describe("loadKubeConfig", () => {
  const valid: [string, () => string, (path: string) => Partial<KubeConfig>][] = [
    ["token, CA embedded", () => kubeconfig([SERVER, "certificate-authority-data: CA_DATA"], ["token: abc"]),
      () => ({ server: "https://127.0.0.1:6443", ca: CA, token: "abc", insecureSkipTLSVerify: false })],
    ["client certificate embedded", () =>
      kubeconfig([SERVER, "certificate-authority-data: CA_DATA"], ["client-certificate-data: CERT_DATA", "client-key-data: KEY_DATA"]),
      () => ({ ca: CA, cert: CERT, key: KEY, token: undefined })],
    ["relative paths resolve against the kubeconfig's directory", () =>
      kubeconfig([SERVER, "certificate-authority: pki/ca.crt"], ["client-certificate: pki/client.crt", "client-key: ./pki/client.key"]),
      () => ({ ca: CA, cert: CERT, key: KEY })],
    ["absolute paths", () =>
      kubeconfig([SERVER, `certificate-authority: ${join(dir, "pki/ca.crt")}`], [`client-certificate: ${pki.client.cert}`, `client-key: ${pki.client.key}`]),
      () => ({ ca: CA, cert: CERT, key: KEY })],
    ["tokenFile, relative, trimmed", () => kubeconfig([SERVER, "certificate-authority: pki/ca.crt"], ["tokenFile: pki/token"]),
      () => ({ token: "file-token", tokenFile: join(dir, "pki", "token") })],
    ["token wins over tokenFile", () => kubeconfig([SERVER], ["token: inline", "tokenFile: pki/missing"]),
      () => ({ token: "inline", tokenFile: undefined })],
    ["data wins over path", () => kubeconfig([SERVER, "certificate-authority-data: CA_DATA", "certificate-authority: pki/missing"], ["token: t"]),
      () => ({ ca: CA })],
    ["insecure-skip-tls-verify, no CA, trailing slash dropped", () =>
      kubeconfig(["server: https://api.example:6443/", "insecure-skip-tls-verify: true"], ["token: t"]),
      () => ({ server: "https://api.example:6443", ca: undefined, insecureSkipTLSVerify: true })],
    ["server with a path prefix", () => kubeconfig(["server: https://proxy.example/k8s/clusters/c-1"], ["token: t"]),
      () => ({ server: "https://proxy.example/k8s/clusters/c-1" })],
    ["no current-context, only one context", () => kubeconfig([SERVER], ["token: t"], "preferences: {}"),
      () => ({ token: "t" })],
    ["context without user: anonymous", () => `clusters: [{name: c, cluster: {server: "https://h:1"}}]\ncontexts: [{name: x, context: {cluster: c}}]\n`,
      () => ({ server: "https://h:1", token: undefined, cert: undefined })],
    ["JSON is YAML", () => JSON.stringify({
      "current-context": "b",
      clusters: [{ name: "c1", cluster: { server: "https://one:1" } }, { name: "c2", cluster: { server: "https://two:2" } }],
      contexts: [{ name: "a", context: { cluster: "c1", user: "u" } }, { name: "b", context: { cluster: "c2", user: "u" } }],
      users: [{ name: "u", user: { token: "j" } }],
    }), () => ({ server: "https://two:2", token: "j" })],
  ];
  test.each(valid)("%s", async (_name, text, expected) => {
    const path = write(text());
    const config = await loadKubeConfig(path);
    expect(config.source).toBe(path);
    for (const [k, v] of Object.entries(expected(path))) expect([k, config[k as keyof KubeConfig]]).toEqual([k, v]);
  });

  const invalid: [string, () => string, string][] = [
    ["bad YAML", () => "clusters: [a\n  b: c", "invalid YAML: YAML Parse error: Multiline implicit key"],
    ["not a mapping", () => "- a\n- b\n", "not a kubeconfig: the document is not a mapping"],
    ["empty file", () => "", "not a kubeconfig: the document is not a mapping"],
    ["context not found", () => kubeconfig([SERVER], ["token: t"], "current-context: x"), 'context "x" not found'],
    ["no contexts", () => `clusters: [{name: c, cluster: {server: "https://h:1"}}]\n`, "no contexts"],
    ["several contexts, none current", () => "contexts: [{name: a, context: {}}, {name: b, context: {}}]\n",
      "no current-context and 2 contexts to choose from"],
    ["context without cluster", () => "contexts: [{name: a, context: {user: u}}]\n", 'context "a" has no cluster'],
    ["cluster not found", () => "contexts: [{name: a, context: {cluster: gone}}]\n", 'cluster "gone" of context "a" not found'],
    ["user not found", () => "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\ncontexts: [{name: a, context: {cluster: c, user: gone}}]\n",
      'user "gone" of context "a" not found'],
    ["clusters not a list", () => "clusters: {c: 1}\ncontexts: [{name: a, context: {cluster: c}}]\n", "clusters is not a list"],
    ["no server", () => kubeconfig(["certificate-authority-data: CA_DATA"], ["token: t"]), 'cluster "c" has no server'],
    ["server not a URL", () => kubeconfig(["server: 127.0.0.1:6443"], ["token: t"]),
      'server "127.0.0.1:6443" of cluster "c" is not an http:// or https:// URL'],
    ["server not a string", () => kubeconfig(["server: 6443"], ["token: t"]), 'server of cluster "c" is not a string'],
    ["insecure-skip-tls-verify not boolean", () => kubeconfig([SERVER, "insecure-skip-tls-verify: 'yes'"], ["token: t"]),
      'insecure-skip-tls-verify of cluster "c" is not true or false'],
    ["missing CA file", () => kubeconfig([SERVER, "certificate-authority: pki/missing.crt"], ["token: t"]),
      `cannot read certificate-authority "${dir}/pki/missing.crt" of cluster "c": file does not exist`],
    ["CA file not PEM", () => kubeconfig([SERVER, "certificate-authority: pki/not-pem"], ["token: t"]),
      `certificate-authority "${dir}/pki/not-pem" of cluster "c" is not PEM`],
    ["CA path is a directory", () => kubeconfig([SERVER, "certificate-authority: pki"], ["token: t"]),
      `cannot read certificate-authority "${dir}/pki" of cluster "c": is a directory`],
    ["CA data not base64 PEM", () => kubeconfig([SERVER, "certificate-authority-data: bm90IGEgY2VydA=="], ["token: t"]),
      'certificate-authority-data of cluster "c" is not base64-encoded PEM'],
    ["missing client certificate file", () => kubeconfig([SERVER], ["client-certificate: pki/gone.crt", "client-key: pki/client.key"]),
      `cannot read client-certificate "${dir}/pki/gone.crt" of user "u": file does not exist`],
    ["certificate without key", () => kubeconfig([SERVER], ["client-certificate-data: CERT_DATA"]),
      'user "u" has client-certificate but no client-key'],
    ["key without certificate", () => kubeconfig([SERVER], ["client-key: pki/client.key"]),
      'user "u" has client-key but no client-certificate'],
    ["missing tokenFile", () => kubeconfig([SERVER], ["tokenFile: pki/gone"]),
      `cannot read tokenFile "${dir}/pki/gone" of user "u": file does not exist`],
    ["exec credentials", () => kubeconfig([SERVER], ["exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}"]),
      'user "u" authenticates with exec, which kube-ipam does not support: use token, tokenFile or client-certificate'],
  ];
  test.each(invalid)("%s", async (_name, text, reason) => {
    const path = write(text());
    const err = await loadKubeConfig(path).catch((e) => e);
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.name).toBe("KubeConfigError");
    expect(err.source).toBe(path);
    expect(err.message).toBe(`Cannot load kubeconfig "${path}": ${reason}`);
  });

  test("missing file", async () => {
    const path = join(dir, "nope");
    const err = await loadKubeConfig(path).catch((e) => e);
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(`Cannot load kubeconfig "${path}": file does not exist`);
    expect(err.cause.code).toBe("ENOENT");
  });

  test("YAML errors keep the parser's error as cause", async () => {
    const err = await loadKubeConfig(write("a: [")).catch((e) => e);
    expect(err.cause?.name).toBe("SyntaxError");
  });
});

describe("inClusterConfig", () => {
  const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
  const files = () => ({ tokenFile: join(dir, "pki", "token"), caFile: join(dir, "pki", "ca.crt") });

  test("service account token and CA", () => {
    expect(inClusterConfig({ env, ...files() })).toEqual({
      source: "in-cluster", server: "https://10.96.0.1:443", ca: CA, insecureSkipTLSVerify: false,
      token: "file-token", tokenFile: files().tokenFile,
    });
  });

  test("IPv6 service host", () => {
    const config = inClusterConfig({ env: { ...env, KUBERNETES_SERVICE_HOST: "fd00:10:96::1" }, ...files() });
    expect(config.server).toBe("https://[fd00:10:96::1]:443");
  });

  const invalid: [string, () => Parameters<typeof inClusterConfig>[0], string][] = [
    ["outside a pod", () => ({ env: {}, ...files() }),
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a pod?"],
    ["no token", () => ({ env, ...files(), tokenFile: join(dir, "gone") }), `cannot read token "${dir}/gone": file does not exist`],
    ["no CA", () => ({ env, ...files(), caFile: join(dir, "gone") }), `cannot read CA "${dir}/gone": file does not exist`],
    ["CA not PEM", () => ({ env, ...files(), caFile: join(dir, "pki", "not-pem") }), `CA "${dir}/pki/not-pem" is not PEM`],
  ];
  test.each(invalid)("%s", (_name, options, reason) => {
    let err: unknown;
    try {
      inClusterConfig(options());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KubeConfigError);
    expect((err as Error).message).toBe(`Cannot load in-cluster Kubernetes config: ${reason}`);
  });
});
