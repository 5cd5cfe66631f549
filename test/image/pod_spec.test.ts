// The pod spec -> podman translator the image tests rely on (test/support/pod_spec.ts): its tricky parts,
// where a wrong translation would let the image tests pass on something kubelet would run differently.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { manifest } from "../support/deploy_pods.ts";
import { tempDir } from "../support/plugin.ts";
import { containerArgv, containerEnv, expandVars, materializeVolumes, probeUrl, quantityBytes, type PodContext } from "../support/pod_spec.ts";

type Any = any;

const ctx: PodContext = {
  podName: "p",
  namespace: "kube-system",
  nodeName: "node-7",
  serviceEnv: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
  secrets: { s: { "ca.crt": "CA", "tls.key": "KEY", token: "T" } },
  configMaps: {},
  images: { "kube-ipam:0.1.0": "localhost/kube-ipam:test" },
};

/** The values of every `flag` in argv. */
const values = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

describe("Kubernetes' $(VAR) expansion", () => {
  const vars = new Map([["A", "x"], ["HOST_DIR", "/host"]]);
  test.each([
    ["$(A)/b", "x/b"],
    ["$$(A)", "$(A)"], // $$ is an escaped $
    ["$(UNDEFINED)", "$(UNDEFINED)"],
    ["$(A", "$(A"],
    ['cp "$1" "$2.tmp"', 'cp "$1" "$2.tmp"'],
    ['"${src##*/}" "$HOST_DIR"', '"${src##*/}" "$HOST_DIR"'],
    ["a$", "a$"],
  ])("%p -> %p", (input, want) => {
    expect(expandVars(input, vars)).toBe(want);
  });

  test("the DaemonSet's init script comes through unchanged, as its comment promises", () => {
    const init = manifest("kube-ipam-daemonset.yaml", "DaemonSet").spec.template.spec.initContainers[0];
    const env = containerEnv(init, ctx);
    for (const arg of init.args) expect(expandVars(arg, env)).toBe(arg);
  });
});

test("env: service variables first, values expanded in order, fieldRef and secretKeyRef resolved", () => {
  const env = containerEnv({
    env: [
      { name: "URL", value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)" },
      { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "token" } } },
      { name: "BOTH", value: "$(NODE)-$(LATER)" },
      { name: "LATER", value: "l" },
    ],
  }, ctx);
  expect(Object.fromEntries(env)).toEqual({
    ...ctx.serviceEnv, URL: "https://10.96.0.1:443", NODE: "node-7", TOKEN: "T", BOTH: "node-7-$(LATER)", LATER: "l",
  });
});

test("command replaces the entrypoint; the security context becomes podman's flags", () => {
  const pod = { hostNetwork: true, securityContext: { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534 }, containers: [] };
  const container = {
    name: "c", image: "kube-ipam:0.1.0", command: ["/bin/sh", "-c"], args: ["echo $(X) $$"],
    env: [{ name: "X", value: "1" }],
    securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"], add: ["DAC_OVERRIDE"] } },
  };
  const argv = containerArgv(pod, container, ctx, new Map());
  expect(values(argv, "--entrypoint")).toEqual(['["/bin/sh","-c"]']);
  expect(argv.slice(-2)).toEqual(["localhost/kube-ipam:test", "echo 1 $"]);
  expect(values(argv, "--network")).toEqual(["host"]);
  expect(values(argv, "--user")).toEqual(["65534:65534"]);
  expect(values(argv, "--group-add")).toEqual(["65534"]);
  expect(argv).toContain("--read-only");
  expect(argv).toContain("--read-only-tmpfs=false"); // no writable /tmp that Kubernetes would not give
  expect(values(argv, "--security-opt")).toEqual(["no-new-privileges"]);
  expect([values(argv, "--cap-drop"), values(argv, "--cap-add")]).toEqual([["ALL"], ["DAC_OVERRIDE"]]);
});

test("what kubelet would refuse, or the translator does not know, is an error", () => {
  const c = { name: "c", image: "kube-ipam:0.1.0" };
  expect(() => containerArgv({ securityContext: { runAsNonRoot: true }, containers: [] }, c, ctx, new Map()))
    .toThrow('container "c": runAsNonRoot and runs as root');
  expect(() => containerArgv({ containers: [] }, { ...c, lifecycle: {} }, ctx, new Map()))
    .toThrow('container "c": field "lifecycle" is not emulated');
  expect(() => containerArgv({ containers: [] }, { ...c, image: "other:1" }, ctx, new Map())).toThrow('no image stands for "other:1"');
});

describe("volumes", () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir("kube-ipam-podspec-")));
  afterEach(() => dir.cleanup());

  test("a secret's items get defaultMode; with fsGroup they are group-owned and group-readable", () => {
    const secret = { name: "tls", secret: { secretName: "s", defaultMode: 256, items: [{ key: "tls.key", path: "tls.key" }, { key: "ca.crt", path: "ca.crt" }] } };
    for (const [fsGroup, want] of [[undefined, { mode: 0o400, gid: 0 }], [65534, { mode: 0o440, gid: 65534 }]] as const) {
      const out = join(dir.path, String(fsGroup));
      const volumes = materializeVolumes({ securityContext: { fsGroup }, volumes: [secret] }, ctx, {}, out);
      expect(volumes.get("tls")).toEqual({ kind: "bind", path: join(out, "tls"), alwaysReadOnly: true });
      expect(readdirSync(join(out, "tls")).sort()).toEqual(["ca.crt", "tls.key"]);
      const st = statSync(join(out, "tls", "tls.key"));
      expect({ mode: st.mode & 0o777, gid: st.gid }).toEqual(want);
    }
  });

  test("mounts: a secret is always read-only, a hostPath as the mount says, an emptyDir is a sized tmpfs", () => {
    const pod: Any = {
      containers: [],
      volumes: [
        { name: "tls", secret: { secretName: "s" } },
        { name: "bin", hostPath: { path: "/opt/cni/bin", type: "DirectoryOrCreate" } },
        { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
      ],
    };
    const volumes = materializeVolumes(pod, ctx, { "/opt/cni/bin": join(dir.path, "bin") }, dir.path);
    expect(statSync(join(dir.path, "bin")).isDirectory()).toBe(true);
    const argv = containerArgv(pod, {
      name: "c", image: "kube-ipam:0.1.0",
      volumeMounts: [{ name: "tls", mountPath: "/tls" }, { name: "bin", mountPath: "/host/bin" }, { name: "tmp", mountPath: "/tmp" }],
    }, ctx, volumes);
    expect(values(argv, "--volume")).toEqual([`${join(dir.path, "tls")}:/tls:ro`, `${join(dir.path, "bin")}:/host/bin:rw`]);
    expect(values(argv, "--mount")).toEqual(["type=tmpfs,destination=/tmp,tmpfs-mode=0777,tmpfs-size=1048576"]);
  });
});

test("quantities and probe URLs", () => {
  expect([quantityBytes("512Mi"), quantityBytes("1Gi"), quantityBytes("100M"), quantityBytes("1024")]).toEqual([512 * 2 ** 20, 2 ** 30, 1e8, 1024]);
  const c = { name: "c", ports: [{ name: "metrics", containerPort: 9153 }] };
  expect(probeUrl(c, { httpGet: { path: "/healthz", port: "metrics" } })).toBe("http://127.0.0.1:9153/healthz");
  expect(probeUrl(c, { httpGet: { path: "/healthz", port: 9154 } })).toBe("http://127.0.0.1:9154/healthz");
});
