// The controller's and the agent's HTTPS endpoints (--auth kubernetes, a real kube-apiserver checking tokens)
// under hostile input over real TLS connections: fast-check's malformed requests, oversized headers and
// bodies, slow-loris connections and half-closed ones. Neither process crashes or shows data to a request
// without a valid token, memory stays bounded (docs/security.md), a real scrape keeps being served, and each
// kind of refusal is logged once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type TLSSocket } from "node:tls";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type Controller, startController } from "../support/controller.ts";
import { freePorts } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { type KubeApiServer, startKubeApiServer } from "../support/kube_apiserver.ts";
import { BINARY, fileNetConf, tempDir } from "../support/plugin.ts";

let api: KubeApiServer;
let dir: ReturnType<typeof tempDir>;
let controller: Controller;
let agent: { proc: Subprocess<"ignore", "ignore", "pipe">; port: number; log: () => string };
let scraper: string;

/** Extra memory a storm may cost a process, over its RSS before it (measured: 2,000 slow connections cost 12 MiB). */
const RSS_BOUND_MIB = 64;

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

/** Sends `bytes` on a new TLS connection, ends its side when `halfClose`, and returns all the server said. */
function exchange(port: number, bytes: Uint8Array | string, halfClose: boolean): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      s.write(bytes);
      if (halfClose) s.end();
    });
    s.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      // One answer is all a test reads; a kept-alive connection is closed here.
      if (/\r\n\r\n/.test(out) && !halfClose) s.end();
    });
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
  });
}

async function scrape(port: number): Promise<number> {
  const res = await fetch(`https://127.0.0.1:${port}/metrics`, {
    headers: { authorization: `Bearer ${scraper}` }, tls: { rejectUnauthorized: false },
  } as RequestInit);
  const body = await res.text();
  return res.status === 200 && body.includes("kube_ipam_build_info") ? 200 : res.status;
}

const endpoints = () => [
  { name: "controller", port: controller.port, pid: controller.proc.pid, log: () => controller.log() },
  { name: "agent", port: agent.port, pid: agent.proc.pid, log: () => agent.log() },
];

beforeAll(async () => {
  dir = tempDir();
  api = await startKubeApiServer();
  scraper = await api.serviceAccountToken("monitoring", "prometheus", { clusterRole: "kube-ipam-metrics-reader", grants: "/metrics" });
  const conf = join(dir.path, "net.conf");
  writeFileSync(conf, JSON.stringify(fileNetConf(dir.path)));
  controller = startController("hostile", conf, ["--kubeconfig", api.writeKubeconfig(join(dir.path, "c"), "token", { identity: "controller" }),
    "--gc-interval", "1h"], undefined, { defaultAuth: true });
  const [port] = freePorts(1) as [number];
  const proc = Bun.spawn([BINARY, "agent", "--socket", join(dir.path, "run", "agent.sock"), "--metrics-addr", `127.0.0.1:${port}`,
    "--kubeconfig", api.writeKubeconfig(join(dir.path, "a"), "token", { identity: "agent" })],
  { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let text = "";
  void (async () => {
    for await (const chunk of proc.stderr) text += new TextDecoder().decode(chunk);
  })();
  agent = { proc, port, log: () => text };
  for (const e of endpoints()) {
    await eventually(`the ${e.name} scraped`, () => scrape(e.port).catch(() => 0), (s) => s === 200, { withinMs: 20_000, everyMs: 100 });
  }
}, 120_000);
afterAll(async () => {
  await controller?.kill();
  agent?.proc.kill("SIGKILL");
  await api?.stop();
  dir?.cleanup();
});

// 303: POST /logout, which only clears the cookie.
const STATUSES = new Set([303, 400, 401, 403, 404, 405, 408, 413, 414, 429, 431, 501, 503, 505]);

/** A request line and headers as fast-check makes them: any method, path, header names and values, maybe a token. */
const httpish = fc.record({
  method: fc.oneof(fc.constantFrom("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PRI"), fc.string({ maxLength: 12 })),
  path: fc.oneof(fc.constantFrom("/metrics", "/", "/api/networks", "/api/events", "/login", "/logout", "/healthz/../metrics", "*"),
    fc.string({ maxLength: 200 })),
  version: fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", ""),
  headers: fc.array(fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 400 })), { maxLength: 8 }),
  token: fc.option(fc.oneof(fc.string({ maxLength: 2000 }), fc.base64String({ maxLength: 1500 })), { nil: undefined }),
  body: fc.option(fc.string({ maxLength: 2000 }), { nil: undefined }),
}).map((r) => {
  const headers = [["Host", "x"], ...r.headers, ...(r.token !== undefined ? [["Authorization", `Bearer ${r.token}`]] : []),
    ...(r.body !== undefined ? [["Content-Length", String(Buffer.byteLength(r.body))]] : [])];
  return `${r.method} ${r.path} ${r.version}\r\n${headers.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${r.body ?? ""}`;
});

describe("hostile input to the HTTPS endpoints", () => {
  test("fast-check's malformed requests and raw bytes: only refusals, never data; the processes live and keep serving", async () => {
    const before = new Map(endpoints().map((e) => [e.name, rssMiB(e.pid)]));
    await fc.assert(fc.asyncProperty(
      fc.oneof(httpish, fc.uint8Array({ minLength: 1, maxLength: 4096 })),
      fc.boolean(), fc.constantFrom(0, 1),
      async (input, halfClose, which) => {
        const e = endpoints()[which]!;
        const answer = await exchange(e.port, input, halfClose);
        if (answer === "") return; // closed without a word: a refusal too
        const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
        if (status === 200) {
          // Only /healthz is served without a valid token, and it says ok.
          expect(answer).toMatch(/\r\n\r\nok\n$/);
        } else {
          expect(STATUSES).toContain(status);
        }
        expect(answer).not.toContain("kube_ipam_");
        expect(answer).not.toContain('"network"');
      }), { numRuns: 300, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) });
    for (const e of endpoints()) {
      expect(e.name + (await scrape(e.port))).toBe(`${e.name}200`);
      expect(rssMiB(e.pid) - before.get(e.name)!).toBeLessThan(RSS_BOUND_MIB);
      // Every refusal of the run is of a handful of kinds (status x URL x client), each logged once a minute.
      const lines = e.log().split("\n").filter((l) => l.includes('"refused a request"'));
      expect(lines.length).toBeLessThanOrEqual(8);
    }
  }, 120_000);

  test("oversized: a 1 MiB header is refused (431), a 10 MiB login body is refused unread, a huge token refused", async () => {
    for (const e of endpoints()) {
      const header = await exchange(e.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(1 << 20)}\r\n\r\n`, false);
      expect(header).toStartWith("HTTP/1.1 431 ");
      const bigToken = await exchange(e.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${"t".repeat(64 * 1024)}\r\n\r\n`, false);
      expect(bigToken).toMatch(/^HTTP\/1\.1 (431|401) /);
      const body = await exchange(e.port, `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${10 << 20}\r\n\r\ntoken=abc`, false);
      expect(body).toMatch(/^HTTP\/1\.1 (401|404|413) /);
      expect(await scrape(e.port)).toBe(200);
    }
  });

  test("half-closed: a whole request then FIN is answered; half a request then FIN gets nothing served", async () => {
    for (const e of endpoints()) {
      expect(await exchange(e.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true)).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok\n$/);
      const partial = await exchange(e.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${scraper}`, true);
      expect(partial).not.toContain("kube_ipam_");
    }
  });

  test("slow loris: 1,000 connections that never finish their headers cost bounded memory, a scrape is still served, and the server closes them", async () => {
    // Both at once: each waits for its server's header deadline.
    await Promise.all(endpoints().map(async (e) => {
      const before = rssMiB(e.pid);
      const sockets: TLSSocket[] = [];
      await Promise.all(Array.from({ length: 1000 }, () => new Promise<void>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: e.port, rejectUnauthorized: false }, () => {
          s.write("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
          resolve();
        });
        s.on("error", () => resolve());
        sockets.push(s);
      })));
      try {
        expect(sockets.filter((s) => !s.destroyed).length).toBe(1000);
        expect(await scrape(e.port)).toBe(200);
        expect(rssMiB(e.pid) - before).toBeLessThan(RSS_BOUND_MIB);
        // A byte now and then does not keep them: the server ends a request whose headers do not complete.
        await eventually(`the ${e.name} closes the slow connections`, () => {
          for (const s of sockets) if (!s.destroyed) s.write("a");
          return sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
        }, (open) => open === 0, { withinMs: 60_000, everyMs: 1000 });
      } finally {
        for (const s of sockets) s.destroy();
      }
      expect(await scrape(e.port)).toBe(200);
    }));
  }, 150_000);
});
