// deploy/rbac.yaml and deploy/kubernetes-datastore.yaml give each of kube-ipam's three ServiceAccounts exactly
// what its component's code uses, as `kubectl auth can-i` on a real kube-apiserver reports it:
//   kube-ipam-plugin      the CNI plugin (src/plugin/pod_lookup.ts: one pod GET; with the Kubernetes store,
//                         src/store/kubernetes/: api.ts's operations, held_mirror.ts's and the reservations' watches,
//                         which the node agent runs with the plugin's kubeconfig)
//   kube-ipam-agent       the node agent's pod cache (src/k8s/pod_cache.ts: list and watch of its node's pods, a
//                         GET on a miss) and the reviews that guard its /metrics (src/http/kube_auth.ts)
//   kube-ipam-controller  gc's lists (src/ipam/collect_garbage.ts), the reviews that guard its endpoints, and with
//                         the Kubernetes store the releases and parkings, the watches of the dashboard and the
//                         metrics, and the leader Lease (leader.ts)
// Each list is compared whole (every resource and non-resource URL), less what every ServiceAccount has by
// the defaults (self-reviews, discovery, health): a right added to any role, or bound to any group the
// accounts are in, shows up. The rest of the suite runs each component with its own identity, which shows
// each list suffices.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Identity, type KubeApiServer, kubeBinDir, startKubeApiServer, USERS } from "../support/kube_apiserver.ts";
import { tempDir } from "../support/plugin.ts";

let api: KubeApiServer;
let admin: string;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  api = await startKubeApiServer();
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

/** A ServiceAccount name nothing binds: in kube-system, so in the same groups as kube-ipam's three. */
const UNBOUND = "system:serviceaccount:kube-system:kube-ipam-test-unbound";

/**
 * `kubectl auth can-i --list --as USER` as rows "resource [names] [verbs]" (names left out when none) and
 * "URL [verbs]" for non-resource URLs, verbs sorted, duplicates dropped, sorted.
 */
function canList(user: string, namespace: string): string[] {
  const { code, out } = kubectl("auth", "can-i", "--list", `--as=${user}`, "-n", namespace);
  expect({ code }).toEqual({ code: 0 });
  const [header, ...lines] = out.split("\n");
  // A fixed-width table whose first two columns may be empty: cut at the headers' columns.
  const at = ["Non-Resource URLs", "Resource Names", "Verbs"].map((h) => header!.indexOf(h));
  expect(at.every((i) => i > 0)).toBe(true);
  const rows = new Set<string>();
  for (const line of lines) {
    if (!line.trim()) continue;
    const [resource, urls, names, verbs] = [line.slice(0, at[0]), line.slice(at[0], at[1]), line.slice(at[1], at[2]), line.slice(at[2])]
      .map((c) => c.trim());
    const sorted = `[${verbs!.slice(1, -1).split(" ").sort().join(" ")}]`;
    if (resource) rows.add(`${resource}${names === "[]" ? "" : ` ${names}`} ${sorted}`);
    else rows.add(`${urls!.slice(1, -1)} ${sorted}`);
  }
  return [...rows].sort();
}

/** What `identity` may do in `namespace` beyond what every ServiceAccount of kube-system may. */
function rights(identity: Identity, namespace: string): string[] {
  const baseline = new Set(canList(UNBOUND, namespace));
  return canList(USERS[identity], namespace).filter((r) => !baseline.has(r));
}

/** `kubectl auth can-i VERB RESOURCE --as` the identity's user: "yes" or "no" (the answer's first line). */
function can(identity: Identity | string, ...args: string[]): string {
  const user = identity in USERS ? USERS[identity as Identity] : identity;
  // kubectl warns after the answer that cluster-scoped resources have no namespace.
  return kubectl("auth", "can-i", `--as=${user}`, ...args).out.split("\n")[0]!.trim();
}

const REVIEWS = ["subjectaccessreviews.authorization.k8s.io [create]", "tokenreviews.authentication.k8s.io [create]"];

test("the baseline every ServiceAccount has is self-reviews and reads of discovery and health URLs only", () => {
  for (const row of canList(UNBOUND, "kube-system")) {
    expect(row).toMatch(/^(self(subjectreviews\.authentication|subjectaccessreviews\.authorization|subjectrulesreviews\.authorization)\.k8s\.io \[create\]|\/\S* \[get\])$/);
  }
  expect(canList(UNBOUND, "kube-system")).not.toContainEqual(expect.stringMatching(/^\/metrics|^\/kube-ipam/));
});

describe("with deploy/rbac.yaml (the etcd store)", () => {
  test.each(["default", "kube-system"])("kube-ipam-plugin in %s: GET a pod, nothing else", (namespace) => {
    // Its pod (annotations, owner references) and, to take a fixed address over, the pod recorded with it.
    expect(rights("plugin", namespace)).toEqual(["pods [get]"]);
  });

  test.each(["default", "kube-system"])("kube-ipam-agent in %s: its pod cache and its endpoint's reviews", (namespace) => {
    expect(rights("agent", namespace)).toEqual(["pods [get list watch]", ...REVIEWS]);
  });

  test.each(["default", "kube-system"])("kube-ipam-controller in %s: gc's lists and its endpoints' reviews", (namespace) => {
    expect(rights("controller", namespace)).toEqual(["pods [list]", "statefulsets.apps [list]", ...REVIEWS]);
  });

  test("what none of them may do", () => {
    for (const args of [["list", "pods"], ["watch", "pods"], ["list", "pods", "-A"], ["create", "tokenreviews"],
      ["create", "subjectaccessreviews"], ["get", "statefulsets"], ["list", "statefulsets"], ["create", "pods"], ["get", "secrets"],
      ["get", "/metrics"]]) {
      expect(`plugin: ${args.join(" ")}: ${can("plugin", ...args)}`).toBe(`plugin: ${args.join(" ")}: no`);
    }
    for (const args of [["create", "pods"], ["update", "pods"], ["patch", "pods"], ["delete", "pods"], ["create", "pods/binding"],
      ["list", "statefulsets"], ["get", "secrets"], ["create", "serviceaccounts/token"], ["get", "/metrics"]]) {
      expect(`agent: ${args.join(" ")}: ${can("agent", ...args)}`).toBe(`agent: ${args.join(" ")}: no`);
    }
    for (const args of [["get", "pods"], ["watch", "pods"], ["delete", "pods"], ["get", "statefulsets"], ["watch", "statefulsets"],
      ["get", "secrets"], ["get", "/metrics"], ["get", "/kube-ipam/dashboard"]]) {
      expect(`controller: ${args.join(" ")}: ${can("controller", ...args)}`).toBe(`controller: ${args.join(" ")}: no`);
    }
  });
});

describe("the ClusterRoles for people and Prometheus", () => {
  test("are bound to nobody by deploy/", async () => {
    const bindings = (await api.request("GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")).body.items as
      { metadata: { name: string }; roleRef: { name: string } }[];
    expect(bindings.filter((b) => b.roleRef.name.startsWith("kube-ipam-metrics") || b.roleRef.name.startsWith("kube-ipam-dashboard")))
      .toEqual([]);
  });

  test("grant exactly `get` of /metrics and of /kube-ipam/dashboard, the URLs the endpoints authorize", async () => {
    const bind = async (role: string, user: string) => {
      const r = await api.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: `test-${user}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      });
      expect(r.status).toBe(201);
    };
    await bind("kube-ipam-metrics-reader", "test-prometheus");
    await bind("kube-ipam-dashboard-viewer", "test-viewer");
    const baseline = new Set(canList("test-nobody", "default"));
    const granted = (user: string) => canList(user, "default").filter((r) => !baseline.has(r));
    // RBAC reads bindings from an informer: a moment until they count.
    for (const [user, want] of [["test-prometheus", ["/metrics [get]"]], ["test-viewer", ["/kube-ipam/dashboard [get]"]]] as const) {
      const until = Date.now() + 10_000;
      while (granted(user).length === 0 && Date.now() < until) await Bun.sleep(100);
      expect(granted(user)).toEqual([...want]);
    }
    expect(can("test-viewer", "get", "/metrics")).toBe("no");
    expect(can("test-prometheus", "get", "/kube-ipam/dashboard")).toBe("no");
    expect(can("test-viewer", "get", "/kube-ipam/dashboard/api")).toBe("no"); // the one URL, not a prefix
  });
});

describe("with deploy/kubernetes-datastore.yaml too (the Kubernetes store)", () => {
  beforeAll(() => api.installDatastore(), 60_000);

  const PLUGIN_STORE = [
    // Claim (create), holder and precondition reads (get), label-selected lists and the agent's view (list,
    // watch), takeover, sticky parking and reclaim (update), release (delete): one object at a time.
    "ipallocations.kube-ipam.io [create delete get list update watch]",
    // The node's round-robin position: read, created on first use, moved by a merge patch.
    "ipcursors.kube-ipam.io [create get patch]",
    // Read by every ADD; the agent keeps a watch-fed copy.
    "ipreservations.kube-ipam.io [list watch]",
  ];
  test.each(["default", "kube-system"])("kube-ipam-plugin in %s: a pod GET and the store's operations", (namespace) => {
    expect(rights("plugin", namespace)).toEqual([...PLUGIN_STORE, "pods [get]"]);
  });

  test.each(["default", "kube-system"])("kube-ipam-agent in %s: nothing more (the agent's store is the plugin's identity)", (namespace) => {
    expect(rights("agent", namespace)).toEqual(["pods [get list watch]", ...REVIEWS]);
  });

  // gc lists and acts on what it listed (update: park; delete: release); the dashboard and the metrics list
  // and watch allocations and reservations. No get, create or cursor.
  const CONTROLLER_STORE = ["ipallocations.kube-ipam.io [delete list update watch]", "ipreservations.kube-ipam.io [list watch]"];
  test("kube-ipam-controller in default: gc's lists, the reviews, releases and parkings, the watches", () => {
    expect(rights("controller", "default")).toEqual([...CONTROLLER_STORE, "pods [list]", "statefulsets.apps [list]", ...REVIEWS]);
  });

  test("kube-ipam-controller in kube-system: also the controllers' one Lease (and creating it)", () => {
    expect(rights("controller", "kube-system")).toEqual([
      ...CONTROLLER_STORE,
      "leases.coordination.k8s.io [create]",
      "leases.coordination.k8s.io [kube-ipam-controller] [get update]",
      "pods [list]", "statefulsets.apps [list]", ...REVIEWS,
    ]);
  });

  test("what none of them may do: write reservations, delete every allocation at once, touch another Lease", () => {
    const no = (identity: Identity, ...args: string[]) =>
      expect(`${identity}: ${args.join(" ")}: ${can(identity, ...args)}`).toBe(`${identity}: ${args.join(" ")}: no`);
    for (const identity of ["plugin", "agent", "controller"] as const) {
      no(identity, "create", "ipreservations.kube-ipam.io");
      no(identity, "update", "ipreservations.kube-ipam.io");
      no(identity, "delete", "ipreservations.kube-ipam.io");
      no(identity, "deletecollection", "ipallocations.kube-ipam.io");
      no(identity, "patch", "ipallocations.kube-ipam.io");
      no(identity, "update", "leases/kube-controller-manager", "-n", "kube-system");
      no(identity, "update", "leases/kube-ipam-controller", "-n", "default");
    }
    no("plugin", "get", "leases/kube-ipam-controller", "-n", "kube-system");
    no("plugin", "get", "ipreservations.kube-ipam.io");
    for (const verb of ["get", "list", "watch", "create", "update", "patch", "delete"]) {
      no("agent", verb, "ipallocations.kube-ipam.io");
      no("agent", verb, "ipcursors.kube-ipam.io");
    }
    no("controller", "create", "ipallocations.kube-ipam.io");
    no("controller", "get", "ipallocations.kube-ipam.io");
    no("controller", "get", "ipcursors.kube-ipam.io");
    no("controller", "patch", "ipcursors.kube-ipam.io");
    expect(can("controller", "update", "leases/kube-ipam-controller", "-n", "kube-system")).toBe("yes");
    expect(can("plugin", "create", "ipallocations.kube-ipam.io")).toBe("yes");
  });
});
