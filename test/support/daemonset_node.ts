// One node set up by deploy/kube-ipam-daemonset.yaml for real: the image built from deploy/Dockerfile, the
// DaemonSet's init container run to completion and its install-cni container (the agent) running, by
// podman, against an etcd with mutual TLS and a real kube-apiserver.
//
// The node's /opt/cni/bin, /etc/cni/net.d, /etc/kube-ipam, /run/kube-ipam, /var/log, /var/lib/cni/kube-ipam
// are temporary directories (`node.host(path)`). The plugin and the CLI see the ones the installed config
// names at their real paths in the node's mount namespace (test/support/node_view.ts), and so does podman
// (`node.podman` runs in it), so the installed config works unedited.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { metricValue } from "./agent.ts";
import { manifest, MANIFEST_IMAGE, runPod, scrape, startClusterStandIns, waitReady, type ClusterStandIns, type RunningPod } from "./deploy_pods.ts";
import { onExit } from "./exit_cleanup.ts";
import { buildImage, imageToolsMissing, type BuiltImage } from "./image.ts";
import { startNodeView, type NodeView } from "./node_view.ts";
import { tempDir } from "./plugin.ts";
import { probeUrl } from "./pod_spec.ts";
import { Podman, writeContainersConf } from "./podman.ts";

type Any = any;

export const INSTALLED_CONF = "/etc/cni/net.d/10-kube-ipam.conf";
export const INSTALLED_BIN = "/opt/cni/bin/kube-ipam";

export interface DaemonSetNode {
  readonly name: string;
  /** Labels every container the tests start (`--label`), for clean-up. */
  readonly label: string;
  /** A unique word for names of this run (containers, networks). */
  readonly run: string;
  readonly dir: string;
  /** A path on the node -> its stand-in on this machine. */
  host(path: string): string;
  readonly cluster: ClusterStandIns;
  readonly image: BuiltImage;
  /** Podman in the node's mount namespace, with the tests' containers.conf (network configs in `netDir`). */
  readonly podman: Podman;
  readonly netDir: string;
  readonly view: NodeView;
  readonly pod: RunningPod;
  readonly installCni: Any;
  /** Requests of `verb` the agent answered (its histogram's count), from its --metrics-addr. */
  agentServed(verb: string): Promise<number>;
  /** The plugin's JSON log lines (/var/log/kube-ipam.log, the config's logFile). */
  logLines(): Any[];
  /** Runs argv on the node (in its mount namespace). */
  exec(argv: readonly string[], opts?: { env?: Record<string, string>; stdin?: string }): ReturnType<NodeView["run"]>;
  /** Removes every container, the image, the namespace, the stand-ins and the files. */
  stop(): Promise<void>;
}

/** A 10.89.x.0/24 that no route of this machine covers, for the node's network and its test bridge. */
function freeSubnet(): string {
  const routes = Bun.spawnSync(["ip", "-4", "route", "show"]).stdout.toString();
  for (let x = 200 + (process.pid % 40); x < 255; x++) {
    if (!routes.includes(`10.89.${x}.`)) return `10.89.${x}.0/24`;
  }
  throw new Error("No free 10.89.x.0/24 for the test bridge");
}

export async function startDaemonSetNode(nodeName: string, extraCleanup: () => void = () => {}): Promise<DaemonSetNode> {
  const missing = imageToolsMissing();
  if (missing.length > 0) throw new Error(`The image tests need ${missing.join(", ")} (scripts/test.sh installs them as root)`);
  const run = `kipam${process.pid}`;
  const label = `io.kube-ipam.test=${run}`;
  const daemonSet = manifest("kube-ipam-daemonset.yaml", "DaemonSet");
  const podSpec = daemonSet.spec.template.spec;
  const installCni = podSpec.containers.find((c: Any) => c.name === "install-cni");
  const dir = tempDir("kube-ipam-image-node-");
  const host = (path: string) => join(dir.path, "node", path);
  const netDir = join(dir.path, "net.d");
  mkdirSync(netDir);

  // Every hostPath volume gets a stand-in; those install-cni mounts at their own host path (the paths the
  // installed config names) are also bind-mounted there in the node's view.
  const hostPaths: Record<string, string> = {};
  const binds: Record<string, string> = {};
  for (const v of podSpec.volumes.filter((v: Any) => v.hostPath)) {
    hostPaths[v.hostPath.path] = host(v.hostPath.path);
    if (installCni.volumeMounts.some((m: Any) => m.name === v.name && m.mountPath === v.hostPath.path)) {
      mkdirSync(host(v.hostPath.path), { recursive: true });
      binds[v.hostPath.path] = host(v.hostPath.path);
    }
  }

  let cluster: ClusterStandIns | undefined;
  let view: NodeView | undefined;
  let podman: Podman | undefined;
  let image: BuiltImage | undefined;
  const imageName = `localhost/kube-ipam:test-${run}`;
  const cancelExitHook = onExit(() => {
    extraCleanup();
    // By now test/support/etcd.ts has killed etcd: every DEL would wait out its deadline (15 s) in vain.
    // Without the plugin it fails at once, and podman removes the containers (and their netns) anyway.
    rmSync(host(INSTALLED_BIN), { force: true });
    podman?.removeSync(label, [imageName]);
    view?.stopSync();
    dir.cleanup();
  });
  const stop = async () => {
    extraCleanup();
    await podman?.removeLabelled(label);
    await image?.remove();
    await view?.stop();
    await cluster?.stop();
    dir.cleanup();
    cancelExitHook();
  };
  try {
    cluster = await startClusterStandIns(freeSubnet());
    view = await startNodeView(binds);
    const conf = writeContainersConf(dir.path, { networkConfigDir: netDir, cniPluginDirs: [host("/opt/cni/bin"), "/usr/lib/cni"] });
    podman = new Podman({ conf, mountNamespaceOf: view.pid });
    image = await buildImage(podman, imageName);
    const pod = await runPod(podman, podSpec, {
      podName: `kube-ipam-${run}`,
      namespace: daemonSet.metadata.namespace,
      nodeName,
      serviceEnv: cluster.serviceEnv,
      secrets: cluster.secrets,
      serviceAccount: cluster.serviceAccount(podSpec), // kube-ipam-agent's: the agent's own identity
      configMaps: cluster.configMaps,
      images: { [MANIFEST_IMAGE]: image.name },
      extraOptions: ["--label", label],
    }, hostPaths, join(dir.path, "pod"));
    const readiness = probeUrl(installCni, installCni.readinessProbe);
    await waitReady(readiness, "the install-cni container's readiness probe", () => pod.logs("install-cni"));
    const metricsUrl = readiness.replace(/\/healthz$/, "/metrics");
    const nodeView = view;
    const scraperToken = cluster.scraperToken;
    return {
      name: nodeName, label, run, dir: dir.path, host, cluster, image, podman, netDir, view, pod, installCni,
      async agentServed(verb) {
        const text = await scrape(metricsUrl, scraperToken);
        return metricValue(text, "kube_ipam_cni_request_duration_seconds_count", { verb });
      },
      logLines() {
        const path = host("/var/log/kube-ipam.log");
        if (!existsSync(path)) return [];
        return readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
      },
      exec: (argv, opts) => nodeView.run(argv, opts),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
