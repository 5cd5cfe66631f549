// deploy/rbac.yaml and deploy/kubernetes-datastore.yaml grant the ServiceAccount kube-system/kube-ipam exactly
// what kube-ipam's code uses (src/k8s/client.ts's pod and StatefulSet reads; src/store/kubernetes/: api.ts's
// operations, leader.ts's Lease), nothing more, as `kubectl auth can-i` on a real kube-apiserver reports it.
// (One identity for the plugin, the agent and the controller today.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type KubeApiServer, kubeBinDir, SERVICE_ACCOUNT_USER, startKubeApiServer } from "../support/kube_apiserver.ts";
import { tempDir } from "../support/plugin.ts";

let api: KubeApiServer;
let admin: string;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  api = await startKubeApiServer();
  await api.installDatastore();
  admin = api.writeKubeconfig(join(dir.path, "admin"), "client-cert", { client: api.adminCert });
}, 90_000);
afterAll(async () => {
  await api?.stop();
  dir?.cleanup();
});

function kubectl(...args: string[]): { code: number; out: string } {
  const r = Bun.spawnSync([join(kubeBinDir(), "kubectl"), "--kubeconfig", admin, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

/** `kubectl auth can-i --list --as USER` as rows "resource [names] [verbs]", sorted verbs, for kube-ipam's groups. */
function rights(namespace: string): string[] {
  const { code, out } = kubectl("auth", "can-i", "--list", `--as=${SERVICE_ACCOUNT_USER}`, "-n", namespace);
  expect({ code }).toEqual({ code: 0 });
  return out.split("\n").slice(1).map((line) => line.trim().split(/\s{2,}/)).filter((cols) => cols.length >= 4)
    .filter(([resource]) => /\.kube-ipam\.io$/.test(resource!) || /^leases\./.test(resource!) || resource === "pods" ||
      resource === "statefulsets.apps")
    .map(([resource, , names, verbs]) => `${resource} ${names} [${verbs!.slice(1, -1).split(" ").sort().join(" ")}]`)
    .sort();
}

describe("the ServiceAccount's rights on kube-ipam's resources", () => {
  test("exactly what the code uses: allocations read and written one at a time, cursors, reservations read-only; pods and StatefulSets read (deploy/rbac.yaml)", () => {
    expect(rights("default")).toEqual([
      "ipallocations.kube-ipam.io [] [create delete get list update watch]",
      "ipcursors.kube-ipam.io [] [create get patch]",
      "ipreservations.kube-ipam.io [] [get list watch]",
      // The plugin GETs its pod, the agent's pod cache lists and watches a node's, gc lists them all.
      "pods [] [get list watch]",
      // The plugin GETs a sticky pod's StatefulSet, gc lists them.
      "statefulsets.apps [] [get list]",
    ]);
  });

  test("in kube-system also the controllers' one Lease (and creating it)", () => {
    expect(rights("kube-system")).toEqual([
      "ipallocations.kube-ipam.io [] [create delete get list update watch]",
      "ipcursors.kube-ipam.io [] [create get patch]",
      "ipreservations.kube-ipam.io [] [get list watch]",
      "leases.coordination.k8s.io [] [create]",
      "leases.coordination.k8s.io [kube-ipam-controller] [get update]",
      "pods [] [get list watch]",
      "statefulsets.apps [] [get list]",
    ]);
  });

  test("what it must not do: write reservations, delete every allocation at once, touch another Lease", () => {
    // The answer's first line ("yes"/"no"); kubectl warns after it that cluster-scoped resources have no namespace.
    const can = (...args: string[]) => kubectl("auth", "can-i", `--as=${SERVICE_ACCOUNT_USER}`, ...args).out.split("\n")[0]!.trim();
    expect(can("create", "ipreservations.kube-ipam.io")).toBe("no");
    expect(can("delete", "ipreservations.kube-ipam.io")).toBe("no");
    expect(can("deletecollection", "ipallocations.kube-ipam.io")).toBe("no");
    expect(can("patch", "ipallocations.kube-ipam.io")).toBe("no");
    expect(can("update", "leases/kube-controller-manager", "-n", "kube-system")).toBe("no");
    expect(can("update", "leases/kube-ipam-controller", "-n", "default")).toBe("no");
    expect(can("update", "leases/kube-ipam-controller", "-n", "kube-system")).toBe("yes");
    expect(can("create", "ipallocations.kube-ipam.io")).toBe("yes");
  });
});
