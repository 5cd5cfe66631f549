// What users see when etcd fails or is misconfigured: a leader lost mid-run, no etcd at all, TLS
// problems. Every ADD either succeeds or fails with a clear, correctly coded error; nothing is lost.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type EtcdServer, refusedEndpoint, startEtcd, startEtcdCluster } from "../support/etcd.ts";
import { mapLimit, listAllocations, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir();
});
afterAll(() => dir.cleanup());

function conf(etcdConfig: Record<string, unknown>, ipam: Record<string, unknown> = {}, name = "failnet") {
  return {
    cniVersion: "1.0.0",
    name,
    type: "macvlan",
    ipam: { type: "kube-ipam", subnet: "10.40.0.0/24", etcdConfig, logFile: join(dir.path, "kube-ipam.log"), ...ipam },
  };
}

const ls = (c: unknown) => listAllocations(c, dir.path);

describe("etcd unreachable", () => {
  test("ADD fails with code 11 (try again later) within 10 seconds, naming the endpoints", async () => {
    const endpoints = [refusedEndpoint(), refusedEndpoint()];
    const started = performance.now();
    const r = await runPlugin(conf({ etcdURL: endpoints.join(",") }), { command: "ADD" });
    const seconds = (performance.now() - started) / 1000;
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toBe(`Cannot reach etcd at "${endpoints[0]}", "${endpoints[1]}": connection refused`);
    expect(seconds).toBeLessThan(10); // the contract: a runtime is never left hanging
  }, 20_000);

  test("DEL with etcd unreachable is an error, not a false success", async () => {
    const r = await runPlugin(conf({ etcdURL: refusedEndpoint() }), { command: "DEL" });
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(11);
  }, 20_000);

  test("a dead endpoint first in etcdURL still works", async () => {
    const etcd = await startEtcd();
    try {
      const c = conf({ etcdURL: `${refusedEndpoint()},${etcd.endpoint}` });
      const r = await runPlugin(c, { command: "ADD", containerID: "dead-first" });
      expect(r.exitCode).toBe(0);
      expect((await ls(c)).map((a) => a.containerID)).toEqual(["dead-first"]);
    } finally {
      await etcd.stop();
    }
  });
});

describe("3-member cluster", () => {
  test("leader killed mid-run: every ADD succeeds or fails with code 11, retries succeed, no duplicates, DEL leaves nothing", async () => {
    const cluster = await startEtcdCluster(3);
    try {
      const c = conf({ etcdURL: cluster.endpoints.join(",") }, { subnet: "10.41.0.0/24" }, "clusternet");
      const ids = Array.from({ length: 80 }, (_, i) => `ha-${i}`);
      let done = 0;
      const leader = await cluster.leader();
      const run = mapLimit(ids, 8, async (id, i) => {
        const r = await runPlugin(c, { command: "ADD", containerID: id, env: { KUBE_IPAM_NODE_NAME: `node-${i % 10}` } });
        done++;
        return r;
      });
      // Kill the leader once a quarter of the ADDs are through, while the rest are in flight.
      while (done < 20) await Bun.sleep(5);
      await leader.kill();
      const first = await run;
      for (const r of first) {
        if (r.exitCode !== 0) expect(r.json.code).toBe(11);
      }
      // The runtime retries failed ADDs (and re-runs the others: they return what they hold).
      const retried = await mapLimit(ids, 8, (id, i) => runPlugin(c, { command: "ADD", containerID: id, env: { KUBE_IPAM_NODE_NAME: `node-${i % 10}` } }));
      for (const r of retried) expect(r.json.code).toBeUndefined();
      const addrs = retried.map((r) => r.json.ips[0].address);
      expect(new Set(addrs).size).toBe(ids.length);
      for (const [i, r] of first.entries()) {
        if (r.exitCode === 0) expect(retried[i]!.json.ips[0].address).toBe(r.json.ips[0].address);
      }
      const held = await ls(c);
      expect(held.length).toBe(ids.length);

      const dels = await mapLimit(ids, 8, (id) => runPlugin(c, { command: "DEL", containerID: id }));
      for (const r of dels) expect(r.exitCode).toBe(0);
      expect(await ls(c)).toEqual([]);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});

describe("mutual TLS", () => {
  let pki: TestPki;
  let etcd: EtcdServer;
  beforeAll(async () => {
    pki = makeTestPki();
    etcd = await startEtcd({ pki });
  });
  afterAll(async () => {
    await etcd.stop();
  });

  test("works with the seed's field names (etcdTrustedCAFileFile)", async () => {
    const c = conf({
      etcdURL: etcd.endpoint,
      etcdCertFile: pki.client.cert,
      etcdKeyFile: pki.client.key,
      etcdTrustedCAFileFile: pki.ca.cert,
    });
    const r = await runPlugin(c, { command: "ADD", containerID: "tls-1" });
    expect(r.exitCode).toBe(0);
    expect((await ls(c)).map((a) => a.containerID)).toEqual(["tls-1"]);
    expect((await runPlugin(c, { command: "DEL", containerID: "tls-1" })).exitCode).toBe(0);
  });

  test("etcdTrustedCAFile is accepted too", async () => {
    const c = conf({ etcdURL: etcd.endpoint, etcdCertFile: pki.client.cert, etcdKeyFile: pki.client.key, etcdTrustedCAFile: pki.ca.cert });
    expect((await runPlugin(c, { command: "ADD", containerID: "tls-2" })).exitCode).toBe(0);
    expect((await runPlugin(c, { command: "DEL", containerID: "tls-2" })).exitCode).toBe(0);
  });

  test("a wrong CA is a config error naming the CA file and the endpoint", async () => {
    const r = await runPlugin(conf({
      etcdURL: etcd.endpoint,
      etcdCertFile: pki.client.cert,
      etcdKeyFile: pki.client.key,
      etcdTrustedCAFileFile: pki.otherCa.cert,
    }), { command: "ADD" });
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain(`Cannot verify the certificate of etcd at "${etcd.endpoint}" against caFile "${pki.otherCa.cert}"`);
  });

  test("no client certificate: the error says to set certFile and keyFile", async () => {
    const r = await runPlugin(conf({ etcdURL: etcd.endpoint, etcdTrustedCAFileFile: pki.ca.cert }), { command: "ADD" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toBe(`etcd at "${etcd.endpoint}" refused the TLS handshake: the server probably requires a client certificate: set certFile and keyFile`);
  });

  test("a client certificate from another CA is refused, naming the certificate file", async () => {
    const r = await runPlugin(conf({
      etcdURL: etcd.endpoint,
      etcdCertFile: pki.strangerClient.cert,
      etcdKeyFile: pki.strangerClient.key,
      etcdTrustedCAFileFile: pki.ca.cert,
    }), { command: "ADD" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain(`certFile "${pki.strangerClient.cert}"`);
  });

  test("a missing certificate file is named in the error", async () => {
    const missing = join(dir.path, "no-such-cert.pem");
    const r = await runPlugin(conf({ etcdURL: etcd.endpoint, etcdCertFile: missing, etcdKeyFile: pki.client.key, etcdTrustedCAFileFile: pki.ca.cert }), { command: "ADD" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toBe(`Cannot read certFile "${missing}": no such file`);
  });
});
