// The node agent's socket against clients that do not belong or do not behave: a real `kube-ipam agent`
// process (the built binary), attacked over real connections with generated input. The bounds are those of
// src/agent/intake.ts, the peer check that of src/agent/peer_cred.ts; docs/agent.md ("Hostile clients").
//
//   1. malformed lines, binary garbage, near-requests (property): each connection is refused once, never accepted;
//   2. oversized lines, more bytes than the agent buffers for all connections together (and than its memory
//      bound), and lines within the limit whose JSON would build hundreds of thousands of values;
//   3. a slow loris storm of more idle connections than the agent keeps waiting: a real plugin is served during it;
//   4. half-closed connections: closed unserved before the newline, answered after it; bytes after a line unread;
//   5. a peer that is not root, with a socket anyone may connect to: refused, counted, logged once.
//
// After each storm: the agent is alive, a real ADD (the built plugin, the embedded store) is served by it, its
// memory stays under the documented bound, its descriptors are back to where they were, and no turned-away
// connection was logged twice. One agent for the whole file: what a storm leaves behind is there for the next.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { chmodSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { MAX_LINE_BYTES, MAX_PENDING, MAX_PENDING_BYTES } from "../../src/agent/intake.ts";
import { type Agent, metricValue, startAgent } from "../support/agent.ts";
import { anyText } from "../support/arbitraries.ts";
import { eventually } from "../support/eventually.ts";
import { fileNetConf, runPlugin, tempDir } from "../support/plugin.ts";

/** The bound docs/agent.md states for the agent's resident memory under any of these storms. */
const RSS_BOUND_KB = 128 * 1024;

/** Reasons a connection is turned away before its request, or its request refused. */
const REASONS = ["protocol", "build", "late", "peer", "busy", "oversize", "slow", "incomplete"] as const;
const TURNED_AWAY = "agent: turned a connection away";
const MORE_TURNED_AWAY = "agent: more connections turned away";

let dir: ReturnType<typeof tempDir>;
let agent: Agent;
let build: string;
let conf: ReturnType<typeof fileNetConf>;
let baselineFds: number;
let adds = 0;

beforeAll(async () => {
  dir = tempDir("kube-ipam-hostile-");
  agent = await startAgent(dir.path);
  build = /kube_ipam_build_info\{build="([^"]+)"/.exec(await agent.metrics())![1]!;
  conf = fileNetConf(join(dir.path, "net"), { agentSocket: agent.socket });
  await stillServes(); // the store and the plugin's first request are warm before the baseline is taken
  baselineFds = fdCount();
}, 30_000);

afterAll(async () => {
  if (agent) {
    const peak = status("VmHWM");
    console.log(`agent peak RSS over all storms: ${Math.round(peak / 1024)} MiB (bound ${RSS_BOUND_KB / 1024} MiB)`);
    await agent.stop();
  }
  dir?.cleanup();
});

// ---- the agent seen from outside ------------------------------------------------------------------------

/** A field of /proc/PID/status in kB (VmRSS: now; VmHWM: the peak since the agent started). */
function status(field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${agent.proc.pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} in /proc/${agent.proc.pid}/status`);
  return Number(m[1]);
}

const fdCount = () => readdirSync(`/proc/${agent.proc.pid}/fd`).length;

async function refusals(): Promise<Record<(typeof REASONS)[number], number>> {
  const text = await agent.metrics();
  return Object.fromEntries(REASONS.map((r) => [r, metricValue(text, "kube_ipam_agent_refused_total", { reason: r })])) as Record<(typeof REASONS)[number], number>;
}

/** What changed between two readings of refusals(), without the reasons that did not. */
const delta = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - before[k]!] as const).filter(([, v]) => v !== 0));
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** The agent's log lines (JSON on its stderr). */
const logLines = (): any[] => agent.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

/** A real plugin's ADD, through the agent: the plugin succeeds and the agent counts it as its own. */
async function stillServes(): Promise<void> {
  const before = await agent.served("ADD");
  const r = await runPlugin(conf, { command: "ADD", containerID: `real-${adds++}` });
  expect(r.exitCode).toBe(0);
  expect(await agent.served("ADD")).toBe(before + 1);
}

/** What must hold after every storm. */
async function afterStorm(): Promise<void> {
  expect(agent.proc.exitCode).toBeNull();
  await stillServes();
  // Every attacking connection is closed on the agent's side too: nothing is left to hold memory.
  await eventually("the agent's descriptors back to their baseline", fdCount, (n) => n <= baselineFds + 2);
  const rss = status("VmRSS"), peak = status("VmHWM");
  console.log(`agent RSS ${Math.round(rss / 1024)} MiB, peak so far ${Math.round(peak / 1024)} MiB`);
  expect(rss).toBeLessThan(RSS_BOUND_KB);
  expect(peak).toBeLessThan(RSS_BOUND_KB);
  // No turned-away connection logged twice: per kind, one line of its own, then one count per minute (the file
  // runs well within the agent's first window).
  const lines = logLines();
  const first = lines.filter((l) => l.msg === TURNED_AWAY);
  const counted = lines.filter((l) => l.msg === MORE_TURNED_AWAY).reduce((n, l) => n + l.count, 0);
  const total = sum(await refusals());
  expect(first.length + counted).toBeLessThanOrEqual(total);
  for (const reason of new Set(first.map((l) => l.reason))) {
    const summaries = lines.filter((l) => l.msg === MORE_TURNED_AWAY && l.kind === reason).length;
    expect(first.filter((l) => l.reason === reason).length).toBeLessThanOrEqual(1 + summaries);
  }
  expect(lines.filter((l) => l.msg === "agent: connection error").length).toBeLessThanOrEqual(1);
}

// ---- attacking clients ----------------------------------------------------------------------------------

interface Client {
  readonly socket: Socket<undefined>;
  /** What the agent sent. */
  received(): string;
  /** Whether the connection is closed (by the agent, in these tests). */
  isClosed(): boolean;
  /** Writes all of `bytes`, waiting on the socket's backpressure; stops early when the connection closes. */
  send(bytes: Uint8Array): Promise<void>;
}

async function connect(): Promise<Client> {
  let text = "";
  let closed = false;
  let drained: (() => void) | undefined;
  const socket = await Bun.connect({
    unix: agent.socket,
    socket: {
      data: (_s, d) => void (text += d.toString()),
      drain: () => drained?.(),
      close: () => {
        closed = true;
        drained?.();
      },
      error: () => {}, // a reset by the agent closes the connection as well
    },
  });
  return {
    socket,
    received: () => text,
    isClosed: () => closed,
    async send(bytes) {
      for (let off = 0; off < bytes.length && !closed;) {
        const n = socket.write(bytes.subarray(off));
        if (n < 0) return;
        off += n;
        if (off < bytes.length) await new Promise<void>((r) => (drained = r));
      }
    },
  };
}

/** Waits until every client is closed: by the agent, which is what these tests expect of it. */
async function allClosed(clients: readonly Client[], withinMs = 10_000): Promise<void> {
  await eventually("the agent closing every attacking connection", () => clients.filter((c) => !c.isClosed()).length, (n) => n === 0, { withinMs });
}

/** Only refusals came back: never "accepted", never an answer. */
function expectOnlyRefusals(c: Client): void {
  for (const line of c.received().split("\n").filter(Boolean)) expect(Object.keys(JSON.parse(line))).toEqual(["refused"]);
}

const encode = (s: string) => new TextEncoder().encode(s);

/** A real request line for an ADD of `containerID` on the test's network, as the forwarder writes one. */
function requestLine(containerID: string): string {
  return `${JSON.stringify({
    build, startedAt: Date.now(), acceptBy: Date.now() + 60_000, hostname: "node-h",
    env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: containerID, CNI_NETNS: "/var/run/netns/test", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" },
    stdin: JSON.stringify(conf),
  })}\n`;
}

// ---- the storms -----------------------------------------------------------------------------------------

describe("the agent's socket against hostile clients", () => {
  test("malformed lines, binary garbage and near-requests: each connection refused once, the agent unharmed", async () => {
    // Near-requests: the protocol's fields, each valid or not. acceptBy is never in the future, so that even a
    // request right in every other field is dropped as late rather than run.
    const field = <T,>(valid: fc.Arbitrary<T>) => fc.oneof(valid, fc.anything());
    const nearRequest = fc.record({
      build: fc.oneof(fc.constant(build), fc.string(), fc.anything()),
      startedAt: field(fc.integer()),
      acceptBy: fc.oneof(fc.integer({ min: 0, max: 1e12 }), fc.anything().filter((v) => typeof v !== "number")),
      env: field(fc.dictionary(fc.constantFrom("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "X"), fc.string())),
      stdin: field(fc.string()),
      hostname: field(fc.string()),
    }, { requiredKeys: [] }).map((r) => JSON.stringify(r));
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 4096 }),
      anyText.map(encode),
      nearRequest.map(encode),
      fc.json().map(encode),
    );
    const attack = fc.record({
      body,
      // How it ends: a newline (a whole line), the peer's shutdown (a line never finished), or both.
      end: fc.constantFrom("newline", "shutdown", "newline+shutdown"),
      // Where the bytes are cut into separate writes.
      cuts: fc.array(fc.nat(), { maxLength: 4 }),
    });
    const before = await refusals();
    let connections = 0;
    await fc.assert(fc.asyncProperty(fc.array(attack, { minLength: 1, maxLength: 8 }), async (attacks) => {
      const clients = await Promise.all(attacks.map(async (a) => {
        const c = await connect();
        const bytes = a.end === "shutdown" ? a.body : Buffer.concat([a.body, encode("\n")]);
        let from = 0;
        for (const cut of [...a.cuts.map((n) => n % (bytes.length + 1)), bytes.length].sort((x, y) => x - y)) {
          await c.send(bytes.subarray(from, Math.max(from, cut)));
          c.socket.flush();
          from = Math.max(from, cut);
        }
        if (a.end !== "newline") c.socket.shutdown();
        return c;
      }));
      connections += clients.length;
      await allClosed(clients, 5_000);
      for (const c of clients) expectOnlyRefusals(c);
    }), { numRuns: 150 });
    const counted = delta(await refusals(), before);
    // Each connection turned away exactly once, for a reason of the protocol's or the intake's.
    expect(sum(counted)).toBe(connections);
    for (const reason of Object.keys(counted)) expect(["protocol", "build", "late", "incomplete"]).toContain(reason);
    expect(await agent.served("ADD")).toBe(adds);
    await afterStorm();
  }, 30_000);

  test(`oversized lines (past ${MAX_LINE_BYTES} bytes), and more bytes than the agent buffers for all connections (${MAX_PENDING_BYTES})`, async () => {
    const [pattern, extra] = fc.sample(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => b.map((x) => (x === 0x0a ? 0x20 : x))), fc.integer({ min: 1, max: 65536 })), 1)[0]!;
    // The generated pattern, repeated: bytes without a newline, as much as the longest line sent.
    const bytes = new Uint8Array(MAX_LINE_BYTES + extra);
    bytes.set(pattern.subarray(0, bytes.length));
    for (let have = pattern.length; have < bytes.length; have *= 2) bytes.copyWithin(have, 0, have);
    const noNewline = (n: number) => bytes.subarray(0, n);

    // Lines too long: each refused as soon as it passes the limit.
    let before = await refusals();
    const long = await Promise.all(Array.from({ length: 6 }, connect));
    await Promise.all(long.map((c) => c.send(noNewline(MAX_LINE_BYTES + extra))));
    await allClosed(long);
    for (const c of long) expectOnlyRefusals(c);
    expect(delta(await refusals(), before)).toEqual({ oversize: long.length });

    // Lines within the limit that never end, from more connections than the buffer holds, and together more
    // bytes than the agent's whole memory bound: the oldest are turned away as the newest need room, the last
    // ones when their time is up.
    before = await refusals();
    const each = Math.floor(MAX_LINE_BYTES * 0.9);
    const held: Client[] = [];
    for (let sent = 0; sent <= 1.2 * RSS_BOUND_KB * 1024; sent += each) {
      const c = await connect();
      held.push(c);
      await c.send(noNewline(each)); // one after another: the first ones are the oldest
    }
    await allClosed(held);
    for (const c of held) expectOnlyRefusals(c);
    const counted = delta(await refusals(), before);
    expect((counted.busy ?? 0) + (counted.slow ?? 0)).toBe(held.length);
    expect(counted.busy).toBeGreaterThanOrEqual(held.length - Math.floor(MAX_PENDING_BYTES / each));

    // Whole lines within the limit whose JSON would build hundreds of thousands of values (the bytes do not
    // bound what parsing costs): refused as not the protocol, unparsed (src/agent/json_shape.ts).
    before = await refusals();
    const wide: Client[] = [];
    for (const unit of fc.sample(fc.constantFrom("{},", "[],", "[0],", '"x",', "0,", '{"a":{}},'), 40)) {
      const c = await connect();
      wide.push(c);
      await c.send(encode(`[${unit.repeat(Math.floor((MAX_LINE_BYTES - 8) / unit.length))}0]\n`));
    }
    await allClosed(wide);
    for (const c of wide) expect(c.received()).toBe(`${JSON.stringify({ refused: "not the protocol" })}\n`);
    expect(delta(await refusals(), before)).toEqual({ protocol: wide.length });
    await afterStorm();
  }, 30_000);

  test(`a slow loris storm: more idle connections than the agent keeps waiting (${MAX_PENDING}), each trickling bytes; a real plugin is served during it`, async () => {
    const storm = MAX_PENDING + 100;
    const trickles = fc.sample(fc.record({ bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => b.map((x) => (x === 0x0a ? 0x20 : x))), everyMs: fc.integer({ min: 50, max: 300 }) }), storm);
    const before = await refusals();
    const clients: Client[] = [];
    const timers: ReturnType<typeof setInterval>[] = [];
    try {
      for (const t of trickles) {
        const c = await connect();
        clients.push(c);
        // A byte now and then, forever: an idle timeout that every byte restarted would never fire.
        timers.push(setInterval(() => c.isClosed() || void c.socket.write(t.bytes), t.everyMs));
      }
      // The agent has turned the oldest away to keep at most MAX_PENDING waiting...
      await eventually("the oldest connections turned away", async () => (await refusals()).busy - before.busy, (n) => n >= storm - MAX_PENDING);
      // ...and a real plugin arriving now is served: it pushes out the oldest idler, not the other way round.
      const servedDuring = adds;
      await stillServes();
      expect(adds).toBe(servedDuring + 1);
      await allClosed(clients);
    } finally {
      for (const t of timers) clearInterval(t);
    }
    for (const c of clients) expectOnlyRefusals(c);
    const counted = delta(await refusals(), before);
    expect((counted.busy ?? 0) + (counted.slow ?? 0)).toBe(storm);
    // The rest were closed by the deadline although they kept sending (LINE_DEADLINE_MS, not an idle timeout).
    expect(counted.slow).toBeGreaterThan(0);
    expect(counted.slow).toBeLessThanOrEqual(MAX_PENDING);
    await afterStorm();
  }, 30_000);

  test("half-closed connections: shut before the newline, closed unserved; shut after it, answered; and bytes after the line, unread", async () => {
    const before = await refusals();
    const servedBefore = await agent.served("ADD");
    let connections = 0;
    await fc.assert(fc.asyncProperty(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), async (at) => {
      const line = encode(requestLine(`half-${connections}`));
      const cut = Math.floor(at * (line.length - 1)); // never the newline itself
      const c = await connect();
      connections++;
      await c.send(line.subarray(0, cut));
      c.socket.shutdown();
      await allClosed([c], 5_000);
      expect(c.received()).toBe(""); // the peer cannot read: nothing is sent
    }), { numRuns: 40 });
    expect(delta(await refusals(), before)).toEqual({ incomplete: connections });
    expect(await agent.served("ADD")).toBe(servedBefore);

    // A whole line, then the peer's shutdown: the request is run and its answer still reaches the peer.
    const c = await connect();
    await c.send(encode(requestLine("half-whole")));
    c.socket.shutdown();
    await allClosed([c]);
    const [accepted, answer] = c.received().trim().split("\n").map((l) => JSON.parse(l));
    expect(accepted).toEqual({ accepted: true });
    expect(answer.exitCode).toBe(0);
    expect(JSON.parse(answer.stdout).ips).toHaveLength(1);
    expect(await agent.served("ADD")).toBe(servedBefore + 1);
    adds++;

    // A whole line, then bytes on and on: served, and the rest is not read (the agent shut its reading side,
    // so the client's writes fail instead of filling the agent).
    const talker = await connect();
    await talker.send(encode(requestLine("talker")));
    await talker.send(new Uint8Array(4 * MAX_PENDING_BYTES));
    await allClosed([talker]);
    const replies = talker.received().trim().split("\n").map((l) => JSON.parse(l));
    expect(replies[0]).toEqual({ accepted: true });
    expect(replies[1].exitCode).toBe(0);
    expect(await agent.served("ADD")).toBe(servedBefore + 2);
    adds++;
    await afterStorm();
  }, 30_000);

  test("a peer that is not root is refused although the socket's mode lets it connect; counted and logged once", async () => {
    // Only SO_PEERCRED stands in the way: the directories and the socket are opened to all.
    chmodSync(dir.path, 0o755);
    chmodSync(join(dir.path, "run"), 0o755);
    chmodSync(agent.socket, 0o666);
    const before = await refusals();
    const servedBefore = await agent.served("ADD");
    const tries = 20;
    // A tiny client, as uid 65534: each connection sends a request that would otherwise be served, and prints
    // what came back. Python's, not Bun's: Bun's client reports a connection the server closes at once as a
    // failure to connect (ECONNRESET), and the refusal unread.
    const client = `
import json, os, socket, sys
path, line, tries = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
for _ in range(tries):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(line)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused and closed before the line was written
    got = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break  # what was sent before the close has been read
        if not b:
            break
        got += b
    s.close()
    print(json.dumps({"uid": os.getuid(), "got": got.decode()}))
`;
    const proc = Bun.spawn(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3", "-c", client, agent.socket, requestLine("nobody"), String(tries)], {
      stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin" },
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    try {
      expect({ code, err }).toEqual({ code: 0, err: "" });
      const replies = out.trim().split("\n").map((l) => JSON.parse(l));
      expect(replies).toHaveLength(tries);
      for (const r of replies) {
        expect(r.uid).toBe(65534);
        expect(JSON.parse(r.got)).toEqual({ refused: "the agent serves only uid 0, not uid 65534" });
      }
      expect(delta(await refusals(), before)).toEqual({ peer: tries });
      expect(await agent.served("ADD")).toBe(servedBefore);
      const logged = logLines().filter((l) => l.msg === TURNED_AWAY && l.reason === "peer");
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ uid: 65534, gid: 65534, why: "the agent serves only uid 0, not uid 65534" });
      expect(logged[0].pid).toBeGreaterThan(0);
    } finally {
      chmodSync(agent.socket, 0o600);
      chmodSync(join(dir.path, "run"), 0o700);
      chmodSync(dir.path, 0o700);
    }
    // Root still is served.
    await afterStorm();
  }, 30_000);
});
