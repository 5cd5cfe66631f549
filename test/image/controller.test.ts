// Two replicas of deploy/kube-ipam-controller.yaml's container, from the image built from deploy/Dockerfile,
// run by podman as the Deployment's pod spec says (uid 65534, read-only root, no capabilities, the etcd TLS
// Secret readable through fsGroup, the service account's token for in-cluster config), against an etcd
// with mutual TLS and a real kube-apiserver: one leads, both answer their probes, and stopping the
// leader hands the lead to the other.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { metricValue } from "../support/agent.ts";
import { sampleOf } from "../support/controller.ts";
import { manifest, MANIFEST_IMAGE, probe, runPod, scrape, startClusterStandIns, waitReady, type ClusterStandIns, type RunningPod } from "../support/deploy_pods.ts";
import { freePorts } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { onExit } from "../support/exit_cleanup.ts";
import { buildImage, imageToolsMissing, type BuiltImage } from "../support/image.ts";
import { tempDir } from "../support/plugin.ts";
import { probeUrl } from "../support/pod_spec.ts";
import { Podman, writeContainersConf } from "../support/podman.ts";

type Any = any;

const RUN = `kipamctl${process.pid}`;
const LABEL = `io.kube-ipam.test=${RUN}`;
const deployment = manifest("kube-ipam-controller.yaml", "Deployment");
const podSpec = deployment.spec.template.spec;
const MANIFEST_ADDR = "0.0.0.0:9153";

/**
 * The one deviation from the manifest: on one host network two replicas cannot both listen on port 9153
 * (in a cluster they run on different nodes), so each gets its own port, in --metrics-addr and in the
 * container port its probes name.
 */
function onPort(container: Any, port: number): Any {
  if (!container.args.includes(MANIFEST_ADDR)) throw new Error(`the controller's args no longer say ${MANIFEST_ADDR}`);
  return {
    ...container,
    args: container.args.map((a: string) => (a === MANIFEST_ADDR ? `0.0.0.0:${port}` : a)),
    ports: container.ports.map((p: Any) => (p.containerPort === 9153 ? { ...p, containerPort: port } : p)),
  };
}

interface Replica {
  readonly pod: RunningPod;
  readonly container: Any;
  readonly name: string; // podman's container name
  metric(sample: string): Promise<number | undefined>;
  metrics(): Promise<string>;
}

let dir: ReturnType<typeof tempDir>;
let cluster: ClusterStandIns;
let podman: Podman;
let image: BuiltImage;
let replicas: Replica[] = [];
let cancelExitHook = () => {};

beforeAll(async () => {
  const missing = imageToolsMissing();
  if (missing.length > 0) throw new Error(`The image tests need ${missing.join(", ")} (scripts/test.sh installs them as root)`);
  dir = tempDir("kube-ipam-image-ctl-");
  cluster = await startClusterStandIns("10.89.199.0/24"); // no bridge here: only the pool gauges use it
  const conf = writeContainersConf(dir.path, { networkConfigDir: join(dir.path, "net.d"), cniPluginDirs: ["/usr/lib/cni"] });
  podman = new Podman({ conf });
  const imageName = `localhost/kube-ipam:test-${RUN}`;
  cancelExitHook = onExit(() => {
    podman.removeSync(LABEL, [imageName]);
    dir.cleanup();
  });
  image = await buildImage(podman, imageName);
  const ports = freePorts(2);
  replicas = await Promise.all(["a", "b"].map(async (suffix, i) => {
    const container = onPort(podSpec.containers[0], ports[i]!);
    const spec = { ...podSpec, containers: [container] };
    const pod = await runPod(podman, spec, {
      podName: `kube-ipam-controller-${RUN}-${suffix}`,
      namespace: deployment.metadata.namespace,
      nodeName: "image-test-node",
      serviceEnv: cluster.serviceEnv,
      secrets: cluster.secrets,
      configMaps: cluster.configMaps,
      serviceAccount: cluster.serviceAccount(podSpec), // kube-ipam-controller's
      images: { [MANIFEST_IMAGE]: image.name },
      extraOptions: ["--label", LABEL],
    }, {}, join(dir.path, `pod-${suffix}`));
    const metricsUrl = `https://127.0.0.1:${ports[i]}/metrics`;
    const metrics = () => scrape(metricsUrl, cluster.scraperToken);
    return {
      pod,
      container,
      name: pod.containerName(container.name),
      metrics,
      async metric(sample: string) {
        try {
          return sampleOf(await metrics(), sample);
        } catch {
          return undefined;
        }
      },
    };
  }));
  for (const r of replicas) {
    await waitReady(probeUrl(r.container, r.container.readinessProbe), `${r.name}'s readiness probe`, () => r.pod.logs(r.container.name));
  }
}, 600_000);

afterAll(async () => {
  await podman?.removeLabelled(LABEL);
  await image?.remove();
  await cluster?.stop();
  dir?.cleanup();
  cancelExitHook();
});

const leaders = () => Promise.all(replicas.map((r) => r.metric("kube_ipam_leader")));

describe("the controller Deployment's containers, from the image", () => {
  test("each replica answers its liveness and readiness probes and serves metrics, as uid 65534", async () => {
    for (const r of replicas) {
      for (const spec of [r.container.livenessProbe, r.container.readinessProbe]) {
        const url = probeUrl(r.container, spec);
        expect({ url, status: await probe(url) }).toEqual({ url: url.replace(/^http:/, "https:"), status: 200 });
      }
      expect(await r.metric('kube_ipam_build_info{version="0.1.0"}')).toBe(1);
      // The pool of the ConfigMap's network, read from etcd with the TLS files of the Secret (0440, fsGroup).
      const text = await r.metrics();
      expect(["size", "used", "free"].map((g) => metricValue(text, `kube_ipam_pool_${g}`, { network: "k8snetwork" }))).toEqual([191, 0, 191]);
      expect((await podman.ok(["exec", r.name, "id", "-u"])).trim()).toBe("65534");
    }
  });

  test("exactly one replica leads", async () => {
    const flags = await eventually("kube_ipam_leader of both replicas", leaders,
      (v) => v.every((x) => x === 0 || x === 1) && v.filter((x) => x === 1).length === 1, { withinMs: 30_000, everyMs: 200 });
    expect(flags.sort()).toEqual([0, 1]);
  });

  test("a replica reaches the API with its service account (in-cluster config)", async () => {
    const before = cluster.api.requests.length;
    const gc = await podman.run(["exec", replicas[0]!.name, "kube-ipam", "gc", "--conf", "/etc/kube-ipam/net/10-kube-ipam.conf", "--dry-run"]);
    expect({ exitCode: gc.exitCode, stderr: gc.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(cluster.api.requests.slice(before).some((r) => r.startsWith("GET /api/v1/pods"))).toBe(true);
  });

  test("stopping the leader hands the lead to the other replica", async () => {
    const flags = await leaders();
    const leader = replicas[flags.indexOf(1)]!;
    const other = replicas[flags.indexOf(0)]!;
    await podman.ok(["stop", leader.name]);
    expect((await podman.ok(["inspect", "--format", "{{.State.ExitCode}}", leader.name])).trim()).toBe("0");
    await eventually(`kube_ipam_leader of ${other.name}`, () => other.metric("kube_ipam_leader"), (v) => v === 1,
      { withinMs: 30_000, everyMs: 200 });
  }, 60_000);
});
