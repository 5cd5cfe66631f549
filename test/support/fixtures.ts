// The setup most integration files share, registered once per file: a temporary directory, a real etcd on
// loopback, and optionally the Kubernetes API stand-in with a kubeconfig for it. Read the fields inside tests
// and hooks (they are set by beforeAll):
//   const env = useCluster({ kubeApi: true });
//   test("...", () => runPlugin(etcdNetConf(env.etcd.endpoint, env.dir.path, { kubeConfig: env.kubeconfig }), ...));
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { makeTestPki } from "./certs.ts";
import { type EtcdServer, startEtcd } from "./etcd.ts";
import { type KubeApi, startKubeApi } from "./k8s_api.ts";
import { tempDir } from "./plugin.ts";

export interface ClusterFixture {
  readonly dir: ReturnType<typeof tempDir>;
  readonly etcd: EtcdServer;
  /** With `kubeApi: true` only. */
  readonly api: KubeApi;
  /** A bearer-token kubeconfig for `api`; with `kubeApi: true` only. */
  readonly kubeconfig: string;
}

export function useCluster(opts: { kubeApi?: boolean; etcdArgs?: readonly string[] } = {}): ClusterFixture {
  const env = {} as { -readonly [K in keyof ClusterFixture]: ClusterFixture[K] };
  beforeAll(async () => {
    env.dir = tempDir();
    env.etcd = await startEtcd({ args: opts.etcdArgs });
    if (opts.kubeApi) {
      env.api = startKubeApi(makeTestPki());
      env.kubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube"), "token");
    }
  });
  afterAll(async () => {
    env.api?.stop();
    await env.etcd?.stop();
    env.dir?.cleanup();
  });
  return env;
}
