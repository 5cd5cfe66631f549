// docs/multus.md: the layered web/database example works as written. Its NetworkAttachmentDefinitions pass
// the plugin's loader and agree with deploy/ (host paths of the etcd files and kubeconfig); the real plugin,
// called the way Multus calls it (one ADD per interface, CNI_ARGS naming the pod) for pods made from the
// documented templates, gives the documented addresses. The embedded store stands in for etcd; the pods
// are in a real kube-apiserver.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadIpamConfig } from "../../src/config/ipam_config.ts";
import { prefixContains } from "../../src/ip/prefix.ts";
import { podPolicy } from "../../src/ipam/pod_policy.ts";
import { type KubeApiServer, makePod, startKubeApiServer } from "../support/kube_apiserver.ts";
import { runCli, runPlugin, tempDir } from "../support/plugin.ts";

type Any = any;

const DOC = readFileSync(resolve(import.meta.dir, "../../docs/multus.md"), "utf8");
const blocks = [...DOC.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
const objects: Any[] = blocks.flatMap((b) => {
  const parsed = Bun.YAML.parse(b);
  return (Array.isArray(parsed) ? parsed : [parsed]).filter(Boolean);
});
const nads = objects.filter((o) => o.kind === "NetworkAttachmentDefinition");
const deployments = objects.filter((o) => o.kind === "Deployment");
const deployment = (name: string) => deployments.find((d) => d.metadata.name === name);
const nadConfig = (name: string) => JSON.parse(nads.find((n) => n.metadata.name === name).spec.config);

const deployConfig = (() => {
  const cm = Bun.YAML.parse(readFileSync(resolve(import.meta.dir, "../../deploy/configmap.yaml"), "utf8")) as Any;
  return JSON.parse(Object.values(cm.data)[0] as string);
})();

/** The Multus networks annotation as [network, interface] pairs. */
function attachments(template: Any): [string, string][] {
  const list = JSON.parse(template.metadata.annotations["k8s.v1.cni.cncf.io/networks"]);
  return list.map((a: Any) => [a.name, a.interface]);
}

describe("the documented objects", () => {
  test("two NetworkAttachmentDefinitions and three Deployments, all in one namespace", () => {
    expect(nads.map((n) => n.metadata.name).sort()).toEqual(["db-net", "db-repl-net"]);
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["mysql-primary", "mysql-replica", "web"]);
    expect(new Set(objects.map((o) => o.metadata.namespace))).toEqual(new Set(["shop"]));
    for (const n of nads) expect(n.apiVersion).toBe("k8s.cni.cncf.io/v1");
  });

  test.each(["db-net", "db-repl-net"])("%s: accepted by the loader, macvlan, named as its pool", (name) => {
    const conf = nadConfig(name);
    const config = loadIpamConfig(conf, { hostname: () => "node-1" });
    expect(config.network).toBe(name);
    expect(conf.type).toBe("macvlan");
    expect(config.store.kind).toBe("etcd");
  });

  test("the NADs name the host files the DaemonSet installs", () => {
    for (const n of nads) {
      const ipam = JSON.parse(n.spec.config).ipam;
      expect(ipam.etcdConfig).toEqual(deployConfig.ipam.etcdConfig);
      expect(ipam.kubeConfig).toBe(deployConfig.ipam.kubeConfig);
    }
  });

  test("every kube-ipam.ips address lies in its interface's network, outside the dynamic range", () => {
    for (const name of ["mysql-primary", "mysql-replica"]) {
      const template = deployment(name).spec.template;
      expect(template.metadata.annotations["kube-ipam.ip"]).toBeUndefined();
      const pod = makePod({ namespace: "shop", name: `${name}-x`, annotations: template.metadata.annotations });
      for (const [network, ifName] of attachments(template)) {
        const config = loadIpamConfig(nadConfig(network), { hostname: () => "node-1" });
        const fixed = podPolicy(pod, ifName).fixed;
        expect(fixed).toHaveLength(1);
        const range = config.rangeSets[0]![0]!;
        const ip = fixed[0]!.ip;
        expect(prefixContains(range.subnet, ip)).toBe(true);
        expect(ip.value < range.rangeStart.value || ip.value > range.rangeEnd.value).toBe(true);
      }
    }
  });
});

describe("the plugin gives the documented addresses", () => {
  let api: KubeApiServer;
  let dir: ReturnType<typeof tempDir>;
  let confs: Record<string, Any>;

  beforeAll(async () => {
    dir = tempDir("kube-ipam-multus-");
    api = await startKubeApiServer();
    const kubeconfig = api.writeKubeconfig(join(dir.path, "kube"), "token");
    confs = Object.fromEntries(["db-net", "db-repl-net"].map((name) => {
      const conf = nadConfig(name);
      delete conf.ipam.etcdConfig; // one embedded store for both networks, as one etcd
      conf.ipam.dataDir = join(dir.path, "data");
      conf.ipam.kubeConfig = kubeconfig;
      conf.ipam.logFile = join(dir.path, "kube-ipam.log");
      conf.ipam.agentSocket = ""; // the plugin itself, whatever agent listens at the default socket
      return [name, conf];
    }));
  }, 90_000);
  afterAll(async () => {
    await api?.stop();
    dir.cleanup();
  });

  /** Multus: one ADD per attachment, interface named as in the annotation. */
  async function startPod(deploymentName: string, podName: string, containerID: string) {
    const template = deployment(deploymentName).spec.template;
    await api.setPod(makePod({ namespace: "shop", name: podName, annotations: template.metadata.annotations }));
    const out: Record<string, Any> = {};
    for (const [network, ifName] of attachments(template)) {
      out[ifName] = await runPlugin(confs[network], {
        command: "ADD",
        containerID,
        ifName,
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${podName};K8S_POD_INFRA_CONTAINER_ID=${containerID}`,
      });
    }
    return out;
  }

  test("database pods: fixed addresses on net1 and net2; web pods: random addresses on net1", async () => {
    const primary = await startPod("mysql-primary", "mysql-primary-7c9d5-abcde", "c-primary");
    expect(primary.net1.json.ips).toEqual([{ address: "10.188.0.230/16", gateway: "10.188.0.1" }]);
    expect(primary.net2.json.ips).toEqual([{ address: "10.189.0.230/16", gateway: "10.189.0.1" }]);
    const replica = await startPod("mysql-replica", "mysql-replica-5f6b7-fghij", "c-replica");
    expect(replica.net1.json.ips[0].address).toBe("10.188.0.231/16");
    expect(replica.net2.json.ips[0].address).toBe("10.189.0.231/16");

    const web: string[] = [];
    for (const i of [1, 2, 3]) {
      const pod = await startPod("web", `web-6d9b7-${i}`, `c-web-${i}`);
      expect(Object.keys(pod)).toEqual(["net1"]);
      web.push(pod.net1.json.ips[0].address);
    }
    expect(new Set(web).size).toBe(3);
    for (const a of web) {
      const last = Number(a.split("/")[0]!.split(".")[3]);
      expect(a.startsWith("10.188.0.") && last >= 10 && last <= 200).toBe(true);
    }

    const file = join(dir.path, "db-net.conf");
    await Bun.write(file, JSON.stringify(confs["db-net"]));
    const ls = await runCli(["ls", "--conf", file, "-o", "json"]);
    const fixed = ls.json.filter((a: Any) => a.kind === "fixed").map((a: Any) => [a.ip, a.podName, a.ifName]);
    expect(fixed).toEqual([
      ["10.188.0.230", "mysql-primary-7c9d5-abcde", "net1"],
      ["10.188.0.231", "mysql-replica-5f6b7-fghij", "net1"],
    ]);
  });

  test("a second primary while the first lives waits (code 101); it gets the addresses once the first is gone", async () => {
    const surge = await startPod("mysql-primary", "mysql-primary-7c9d5-zzzzz", "c-surge");
    expect(surge.net1.json.code).toBe(101);
    expect(surge.net1.json.msg).toContain("mysql-primary-7c9d5-abcde");
    // Recreate: the old pod's DELs, then the new pod's ADDs.
    for (const [network, ifName] of [["db-net", "net1"], ["db-repl-net", "net2"]] as const) {
      const del = await runPlugin(confs[network], {
        command: "DEL", containerID: "c-primary", ifName,
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=mysql-primary-7c9d5-abcde",
      });
      expect(del.exitCode).toBe(0);
    }
    await api.deletePod("shop", "mysql-primary-7c9d5-abcde");
    const next = await startPod("mysql-primary", "mysql-primary-7c9d5-zzzzz", "c-next");
    expect(next.net1.json.ips[0].address).toBe("10.188.0.230/16");
    expect(next.net2.json.ips[0].address).toBe("10.189.0.230/16");
  });
});
