// The etcd client against real etcd 3.4 processes: one plain server for the key-value and lease calls,
// one with mutual TLS, a three-member cluster for losing the leader. Each test works under its own prefix.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  createRevision, del, EtcdClient, EtcdConfigError, EtcdRequestError, EtcdTlsError, EtcdUnavailableError, get,
  modRevision, prefixEnd, put, value, version,
} from "../../src/store/etcd/client.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type EtcdServer, refusedEndpoint, startEtcd, startEtcdCluster } from "../support/etcd.ts";

let prefixes = 0;
function prefix(name: string): string {
  return `/kube-ipam-test/${name}/${++prefixes}/`;
}

/** An endpoint that accepts connections and never answers; counts them. */
function blackHole(): { endpoint: string; connections: () => number; stop: () => void } {
  let connections = 0;
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open() { connections++; }, data() {} } });
  return { endpoint: `http://127.0.0.1:${l.port}`, connections: () => connections, stop: () => l.stop(true) };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("Expected a rejection");
}

describe("prefixEnd", () => {
  test.each([
    ["/ipam/", "/ipam0"],
    ["a", "b"],
    ["é", "ê"],
    ["a\u{10FFFF}", "b"],
    ["\u{D7FF}", "\u{E000}"],
    ["", "\0"],
  ])("%p -> %p", (p, end) => {
    expect(prefixEnd(p)).toBe(end);
  });
});

describe("options", () => {
  test.each([
    [{ endpoints: [] }, "Cannot create etcd client: no endpoints given"],
    [{ endpoints: ["localhost:2379"] },
      `Cannot use etcd endpoint "localhost:2379": the scheme must be http or https`],
    [{ endpoints: ["127.0.0.1:2379"] },
      `Cannot use etcd endpoint "127.0.0.1:2379": not a URL such as "https://127.0.0.1:2379"`],
    [{ endpoints: ["http://a:1"], certFile: "/c.pem" },
      `Cannot use certFile "/c.pem" without keyFile: set both for mutual TLS`],
    [{ endpoints: ["http://a:1"], certFile: "/nonexistent/c.pem", keyFile: "/nonexistent/c.key" },
      `Cannot read certFile "/nonexistent/c.pem": no such file`],
    [{ endpoints: ["http://a:1"], caFile: import.meta.path },
      `Cannot use caFile "${import.meta.path}": it holds no PEM certificate`],
    [{ endpoints: ["http://a:1"], deadlineMs: 0 }, `Cannot use deadlineMs "0": not a positive number`],
  ])("%j", async (opts, message) => {
    const err = await rejection(EtcdClient.create(opts));
    expect(err).toBeInstanceOf(EtcdConfigError);
    expect(err.name).toBe("EtcdConfigError");
    expect(err.message).toBe(message);
  });
});

describe("one member", () => {
  let etcd: EtcdServer;
  let client: EtcdClient;
  beforeAll(async () => {
    etcd = await startEtcd();
    client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  });
  afterAll(() => etcd?.stop());

  test("put, range, delete", async () => {
    const p = prefix("kv");
    for (const k of ["c", "a", "b"]) await client.put(p + k, `value-${k}`);
    await client.put(`${p.slice(0, -1)}0`, "outside the prefix");

    const all = await client.range(p, { prefix: true });
    expect(all.kvs.map((kv) => [kv.key, kv.value]))
      .toEqual([[p + "a", "value-a"], [p + "b", "value-b"], [p + "c", "value-c"]]);
    expect(all).toMatchObject({ more: false, count: 3 });
    expect(all.kvs[0]!.version).toBe(1n);
    expect(all.kvs[0]!.lease).toBe(0n);

    expect(await client.range(p, { prefix: true, limit: 2 })).toMatchObject({ more: true, count: 3 });
    expect((await client.range(p, { prefix: true, keysOnly: true })).kvs.map((kv) => kv.value)).toEqual(["", "", ""]);
    expect(await client.range(p, { prefix: true, countOnly: true })).toMatchObject({ kvs: [], count: 3 });
    expect((await client.range(p + "a", { end: p + "c" })).kvs.map((kv) => kv.key)).toEqual([p + "a", p + "b"]);
    expect((await client.get(p + "b"))?.value).toBe("value-b");

    expect(await client.delete(p + "a")).toMatchObject({ deleted: 1 });
    expect(await client.delete(p + "a")).toMatchObject({ deleted: 0 });
    expect(await client.delete(p, { prefix: true })).toMatchObject({ deleted: 2 });
    const empty = await client.range(p, { prefix: true });
    expect(empty).toMatchObject({ kvs: [], more: false, count: 0 });
    expect(empty.revision).toBeGreaterThan(0n);
    expect(await client.get(`${p.slice(0, -1)}0`)).toMatchObject({ value: "outside the prefix" });
  });

  test("txn: create if absent succeeds once, then returns the holder", async () => {
    const key = prefix("claim") + "10.0.0.5";
    const claim = (owner: string) => client.txn()
      .if(createRevision(key), "==", 0n)
      .then(put(key, owner), put(`${key}/owner`, owner))
      .else(get(key))
      .commit();

    const first = await claim("pod-a");
    expect(first.succeeded).toBe(true);
    expect(first.responses.map((r) => r.kind)).toEqual(["put", "put"]);
    expect(first.revision).toBeGreaterThan(0n);

    const second = await claim("pod-b");
    expect(second.succeeded).toBe(false);
    const [held] = second.responses;
    expect(held?.kind === "range" && held.kvs.map((kv) => kv.value)).toEqual(["pod-a"]);
    expect((await client.get(`${key}/owner`))?.value).toBe("pod-a");
  });

  test("txn: compare and swap on modRevision, version and value", async () => {
    const key = prefix("cas") + "record";
    const { revision } = await client.put(key, "v1");
    const swap = (rev: bigint, next: string) =>
      client.txn().if(modRevision(key), "==", rev).then(put(key, next)).commit();

    expect((await swap(revision, "v2")).succeeded).toBe(true);
    expect((await swap(revision, "v3")).succeeded).toBe(false);
    expect((await client.get(key))?.value).toBe("v2");

    const byVersion = await client.txn().if(version(key), "==", 2n).if(value(key), "==", "v2")
      .then(del(key), get(key)).commit();
    expect(byVersion.succeeded).toBe(true);
    expect(byVersion.responses[0]).toMatchObject({ kind: "delete", deleted: 1 });
    expect(byVersion.responses[1]).toMatchObject({ kind: "range", kvs: [], count: 0 });
    expect((await client.txn().if(value(key), "!=", "x").commit()).succeeded).toBe(false); // absent key
  });

  test("a transaction builder cannot be awaited by mistake", async () => {
    const err = await rejection((async () => await (client.txn() as unknown as Promise<unknown>))());
    expect(err.message).toBe("Cannot await a transaction builder: call commit()");
  });

  test("UTF-8 keys and values round-trip", async () => {
    const p = prefix("utf8") + "Grüße/日本/";
    const key = `${p}🙂`;
    const text = "ünïcødé ✓ 🙂 \u0000 end";
    await client.put(key, text);
    await client.put(`${p}é`, "e");
    const r = await client.range(p, { prefix: true });
    expect(r.kvs.map((kv) => [kv.key, kv.value])).toEqual([[`${p}é`, "e"], [key, text]]);
    const claimed = await client.txn().if(value(key), "==", text).then(get(key, { keysOnly: true })).commit();
    expect(claimed.succeeded).toBe(true);
  });

  test("leases: keys vanish when their lease is revoked", async () => {
    const key = prefix("lease") + "leader";
    const lease = await client.leaseGrant(30);
    expect(lease.id).toBeGreaterThan(0n);
    expect(lease.ttl).toBe(30);
    await client.put(key, "me", { lease: lease.id });
    expect((await client.get(key))?.lease).toBe(lease.id);

    expect(await client.leaseKeepAliveOnce(lease.id)).toBe(30);
    await client.leaseRevoke(lease.id);
    expect(await client.get(key)).toBeUndefined();
    expect(await client.leaseKeepAliveOnce(lease.id)).toBe(0);
    await client.leaseRevoke(lease.id); // already gone: not an error
  });

  test("etcd refusing a request is an EtcdRequestError", async () => {
    const err = await rejection(client.put("", "no key"));
    expect(err).toBeInstanceOf(EtcdRequestError);
    expect(err.message).toBe(`etcd at "${etcd.endpoint}" refused the request: etcdserver: key is not provided`);
    expect((err as EtcdRequestError).code).toBe(3);
    const lease = await rejection(client.put(prefix("nolease") + "k", "v", { lease: 12345n }));
    expect(lease.message).toEndWith("etcdserver: requested lease not found");
  });

  test("fails over from a dead endpoint and then starts at the one that answered", async () => {
    const hole = blackHole();
    try {
      const key = prefix("failover") + "k";
      const failover = await EtcdClient.create({
        endpoints: [refusedEndpoint(), hole.endpoint, etcd.endpoint], requestTimeoutMs: 200,
      });
      await failover.put(key, "v");
      expect(hole.connections()).toBe(1);
      expect((await failover.get(key))?.value).toBe("v");
      expect(hole.connections()).toBe(1);
    } finally {
      hole.stop();
    }
  });

  test("no endpoint answering is an EtcdUnavailableError naming them all", async () => {
    const endpoints = [refusedEndpoint(), refusedEndpoint()];
    const dead = await EtcdClient.create({ endpoints, deadlineMs: 300 });
    const err = await rejection(dead.range("/x"));
    expect(err).toBeInstanceOf(EtcdUnavailableError);
    expect(err.name).toBe("EtcdUnavailableError");
    expect((err as EtcdUnavailableError).retryable).toBe(true);
    expect(err.message).toBe(`Cannot reach etcd at "${endpoints[0]}", "${endpoints[1]}": connection refused`);
    expect(err.cause).toBeDefined();

    const hole = blackHole();
    try {
      const mixed = await EtcdClient.create({
        endpoints: [hole.endpoint, endpoints[0]!], requestTimeoutMs: 100, deadlineMs: 300,
      });
      const err2 = await rejection(mixed.put("/x", "y"));
      expect(err2).toBeInstanceOf(EtcdUnavailableError);
      expect(err2.message).toMatch(new RegExp(
        `^Cannot reach etcd at "${hole.endpoint}": no answer within \\d+ ms; "${endpoints[0]}": connection refused$`));
    } finally {
      hole.stop();
    }
  });
});

describe("mutual TLS", () => {
  let pki: TestPki;
  let etcd: EtcdServer;
  beforeAll(async () => {
    pki = makeTestPki();
    etcd = await startEtcd({ pki });
  });
  afterAll(() => etcd?.stop());

  test("works with the right CA and client certificate", async () => {
    const client = await EtcdClient.create({
      endpoints: [etcd.endpoint], certFile: pki.client.cert, keyFile: pki.client.key, caFile: pki.ca.cert,
    });
    const key = prefix("tls") + "k";
    await client.put(key, "secure");
    expect((await client.get(key))?.value).toBe("secure");
  });

  test("a server certificate from another CA is an EtcdTlsError naming caFile", async () => {
    const client = await EtcdClient.create({
      endpoints: [etcd.endpoint], certFile: pki.client.cert, keyFile: pki.client.key, caFile: pki.otherCa.cert,
    });
    const err = await rejection(client.range("/x"));
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect(err.message).toBe(`Cannot verify the certificate of etcd at "${etcd.endpoint}" against caFile ` +
      `"${pki.otherCa.cert}": unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE): ` +
      "check that caFile holds the CA that signed the server certificate");
  });

  test("no client certificate is an EtcdTlsError saying to set one", async () => {
    const client = await EtcdClient.create({ endpoints: [etcd.endpoint], caFile: pki.ca.cert });
    const err = await rejection(client.range("/x"));
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect(err.message).toBe(`etcd at "${etcd.endpoint}" refused the TLS handshake: ` +
      "the server probably requires a client certificate: set certFile and keyFile");
  });

  test("a client certificate from another CA is an EtcdTlsError naming certFile", async () => {
    const client = await EtcdClient.create({
      endpoints: [etcd.endpoint], certFile: pki.strangerClient.cert, keyFile: pki.strangerClient.key,
      caFile: pki.ca.cert,
    });
    const err = await rejection(client.range("/x"));
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect(err.message).toBe(`etcd at "${etcd.endpoint}" refused the TLS handshake: ` +
      `check that certFile "${pki.strangerClient.cert}" is signed by a CA the server trusts`);
  });

  test("a key that does not match the certificate is an EtcdTlsError", async () => {
    const client = await EtcdClient.create({
      endpoints: [etcd.endpoint], certFile: pki.client.cert, keyFile: pki.strangerClient.key, caFile: pki.ca.cert,
    });
    const err = await rejection(client.range("/x"));
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect(err.message).toBe(`Cannot set up TLS to etcd at "${etcd.endpoint}": check that certFile ` +
      `"${pki.client.cert}" and keyFile "${pki.strangerClient.key}" belong together and that caFile "${pki.ca.cert}" ` +
      "holds valid certificates");
  });
});

describe("three members", () => {
  test("a transaction succeeds after the leader is killed", async () => {
    const cluster = await startEtcdCluster(3);
    try {
      // A request stuck on a member that lost its leader waits for requestTimeoutMs, then fails over.
      const client = await EtcdClient.create({ endpoints: cluster.endpoints, requestTimeoutMs: 500 });
      const key = prefix("cluster") + "10.0.0.7";
      await client.put(`${key}/before`, "x");

      const leader = await cluster.leader();
      await leader.kill();
      const claim = await client.txn().if(createRevision(key), "==", 0n).then(put(key, "pod-a")).commit();
      expect(claim.succeeded).toBe(true);

      await leader.restart();
      const viaRestarted = await EtcdClient.create({ endpoints: [leader.clientURL] });
      expect((await viaRestarted.get(key))?.value).toBe("pod-a");
    } finally {
      await cluster.stop();
    }
  });
});
