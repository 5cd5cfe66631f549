// The setup most integration files share, registered once per file: a temporary directory, a real etcd on
// loopback, and optionally a real kube-apiserver (test/support/kube_apiserver.ts, on an etcd of its own) with a
// kubeconfig of the plugin's ServiceAccount for it (`env.api.writeKubeconfig(dir, "token", { identity })`
// writes another component's). Read the fields inside tests and hooks (they are set by beforeAll):
//   const env = useCluster({ kubeApi: true });
//   test("...", () => runPlugin(etcdNetConf(env.etcd.endpoint, env.dir.path, { kubeConfig: env.kubeconfig }), ...));
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { type EtcdServer, startEtcd } from "./etcd.ts";
import { type KubeApiServer, startKubeApiServer } from "./kube_apiserver.ts";
import { tempDir } from "./plugin.ts";

export interface ClusterFixture {
  readonly dir: ReturnType<typeof tempDir>;
  readonly etcd: EtcdServer;
  /** With `kubeApi: true` only. */
  readonly api: KubeApiServer;
  /** A bearer-token kubeconfig for `api` (the plugin's ServiceAccount, kube-system/kube-ipam-plugin); with `kubeApi: true` only. */
  readonly kubeconfig: string;
  /** The controller's (for `kube-ipam controller` and gc: they list every pod); with `kubeApi: true` only. */
  readonly controllerKubeconfig: string;
}

export function useCluster(opts: { kubeApi?: boolean; etcdArgs?: readonly string[] } = {}): ClusterFixture {
  const env = {} as { -readonly [K in keyof ClusterFixture]: ClusterFixture[K] };
  beforeAll(async () => {
    env.dir = tempDir();
    const [etcd, api] = await Promise.all([
      startEtcd({ args: opts.etcdArgs }),
      opts.kubeApi ? startKubeApiServer() : undefined,
    ]);
    env.etcd = etcd;
    if (api) {
      env.api = api;
      env.kubeconfig = api.writeKubeconfig(join(env.dir.path, "kube"), "token");
      env.controllerKubeconfig = api.writeKubeconfig(join(env.dir.path, "kube-controller"), "token", { identity: "controller" });
    }
  }, 90_000);
  afterAll(async () => {
    await env.api?.stop();
    await env.etcd?.stop();
    env.dir?.cleanup();
  });
  return env;
}
