// The native forwarder (dist/kube-ipam, src/forwarder/) seen from outside: the runtime's process and a
// stand-in agent, a unix socket in the test that records the request line it gets and answers what the
// test scripts. No etcd: the embedded store in a temporary directory whenever the core has to answer.
//
//   1. the request line carries the config text and the CNI_* variables exactly, in pure ASCII (property);
//   2. the agent's answer comes out byte for byte with its exit status (property), and a reply line is
//      read as protocol.ts decodeReply reads it (differential property);
//   3. which requests are forwarded at all, and that the core answers the others;
//   4. every way the agent can fail to serve: the core runs the request and logs why (agentFallback);
//   5. an agent that accepted and went silent costs the invocation's budget, then the core says code 11;
//   6. the core missing, or reached through a symbolic link;
//   7. stdin at and past the 1 MiB limit.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import {
  ACCEPT_BUDGET_MS, DEFAULT_AGENT_SOCKET, FORWARDED_ENV, FORWARDED_VERBS, decodeReply, decodeRequest,
} from "../../src/agent/protocol.ts";
import { MAX_STDIN_BYTES } from "../../src/plugin/stdin.ts";
import { BINARY, CORE_BINARY, cniEnv, type CniCall, fileNetConf, listAllocations, tempDir } from "../support/plugin.ts";

const PACKAGE_VERSION: string = JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")).version;
const ACCEPTED = JSON.stringify({ accepted: true });

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir("kube-ipam-forwarder-");
});
afterAll(() => dir.cleanup());

let dirs = 0;
/** A fresh directory for one test or one run of a property. */
function freshDir(label: string): string {
  const d = join(dir.path, `${label}-${dirs++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

// ---- the stand-in agent ---------------------------------------------------------------------------------

/** What the stand-in does once it has read a request line: send `lines`, then close or keep the connection. */
interface Script {
  readonly lines: readonly string[];
  readonly then: "close" | "hang";
  /** Waits this long before sending the last line. */
  readonly lastLineAfterMs?: number;
  /** Bytes sent after the lines, with no newline: a line cut short. */
  readonly partialLine?: string;
}

/** A live agent's answer: "accepted", then what the plugin prints. */
const answers = (stdout: string, exitCode: number): Script => ({ lines: [ACCEPTED, JSON.stringify({ stdout, exitCode })], then: "close" });
/** Sends these lines and hangs up. */
const says = (...lines: string[]): Script => ({ lines, then: "close" });
/** Sends these lines and then nothing, keeping the connection open. */
const saysThenHangs = (...lines: string[]): Script => ({ lines, then: "hang" });

interface Connection {
  received: Buffer;
  pending: Buffer;
  endWhenFlushed: boolean;
  answered: boolean;
}

interface StandIn {
  readonly socket: string;
  /** What it does on the next connections; the test may change it between runs. */
  script: Script;
  /** Connections made to it. */
  connections: number;
  /** The request lines read, as bytes, without their newline. */
  readonly requests: Buffer[];
  stop(): void;
}

const running: StandIn[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop();
});

/** A stand-in agent listening on `socket` (in a fresh directory unless given), following `script` on every connection. */
function startStandIn(script: Script, socket = join(freshDir("agent"), "agent.sock")): StandIn {
  const send = (s: Socket<Connection>, text: string, last: boolean) => {
    s.data.pending = Buffer.concat([s.data.pending, Buffer.from(text, "utf8")]);
    if (last && standIn.script.then === "close") s.data.endWhenFlushed = true;
    flush(s);
  };
  const flush = (s: Socket<Connection>) => {
    const c = s.data;
    while (c.pending.length > 0) {
      const n = s.write(c.pending);
      if (n <= 0) return; // the kernel's buffer is full: drain() calls again
      c.pending = c.pending.subarray(n);
    }
    if (c.endWhenFlushed) s.end();
  };
  const standIn: StandIn = {
    socket,
    script,
    connections: 0,
    requests: [],
    stop: () => listener.stop(true),
  };
  const listener = Bun.listen<Connection>({
    unix: socket,
    socket: {
      open(s) {
        standIn.connections++;
        s.data = { received: Buffer.alloc(0), pending: Buffer.alloc(0), endWhenFlushed: false, answered: false };
      },
      data(s, chunk) {
        const c = s.data;
        if (c.answered) return;
        c.received = Buffer.concat([c.received, chunk]);
        const nl = c.received.indexOf(0x0a);
        if (nl < 0) return;
        c.answered = true;
        standIn.requests.push(c.received.subarray(0, nl));
        const { lines, partialLine = "", lastLineAfterMs } = standIn.script;
        const texts = [...lines.map((l) => `${l}\n`), partialLine];
        for (const text of texts.slice(0, -2)) send(s, text, false);
        const sendRest = () => send(s, texts.slice(-2).join(""), true);
        if (lastLineAfterMs) setTimeout(sendRest, lastLineAfterMs);
        else sendRest();
      },
      drain: flush,
      error() {},
    },
  });
  running.push(standIn);
  return standIn;
}

// ---- running the forwarder ------------------------------------------------------------------------------

interface Run {
  exitCode: number;
  /** stdout exactly as written. */
  stdout: Buffer;
  stderr: string;
  /** stdout as JSON; undefined when empty or not JSON. */
  json: any;
  ms: number;
}

/** Runs the forwarder the way a runtime does: `env` (CNI_* and the rest) and the config bytes on stdin. */
async function runForwarder(stdin: string | Uint8Array | null, env: Record<string, string>,
  opts: { binary?: string; args?: string[]; cwd?: string } = {}): Promise<Run> {
  const started = performance.now();
  const proc = Bun.spawn([opts.binary ?? BINARY, ...(opts.args ?? [])], {
    env,
    cwd: opts.cwd ?? dir.path,
    stdin: stdin === null ? "ignore" : typeof stdin === "string" ? Buffer.from(stdin, "utf8") : stdin,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const stdout = Buffer.from(out);
  let json: any;
  try {
    json = stdout.length ? JSON.parse(stdout.toString("utf8")) : undefined;
  } catch {
    json = undefined;
  }
  return { exitCode, stdout, stderr, json, ms: performance.now() - started };
}

let containers = 0;
/** A CNI call of `command` for a container of its own. */
function call(command: string, extra: Partial<CniCall> = {}): Record<string, string> {
  return cniEnv({ command, containerID: `fwd-${process.pid}-${containers++}`, ...extra });
}

/** The core's log lines (ipam.logFile, JSON lines) for the container of `env`. */
function logLinesFor(logFile: string, env: Record<string, string>): any[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.containerID === env.CNI_CONTAINERID);
}

/** A network config on the embedded store in a fresh directory, forwarding to `socket`. */
function confFor(socket: string, ipam: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return fileNetConf(freshDir("net"), { agentSocket: socket, ...ipam }, top);
}

/** Asserts an ADD result the core computed: an address of the config's subnet (10.10.0.0/24 unless set). */
function expectCoreAddResult(r: Run, prefix = "10.10.0.") {
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.json?.ips?.[0]?.address).toStartWith(prefix);
}

const STAND_IN_ANSWER = JSON.stringify({ cniVersion: "1.0.0", ips: [{ address: "192.0.2.99/32" }], answeredBy: "stand-in" });

// ---- 1 and 2: what goes over the socket, and what comes back --------------------------------------------

/** Strings that are UTF-8 text (no lone surrogates): stdin and environment bytes must be. */
const unicodeText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: fc.constantFrom("\0", "\x01", "\x1f", "\x7f", "\"", "\\", "/", "\u0085", "\u2028", "\ufeff", "\uffff", "😀", "é", "\n", "\t"), maxLength: 20 }),
);
const envText = unicodeText.filter((s) => !s.includes("\0"));
/** A config text as a writer might lay it out: compact, indented, or with every non-ASCII character as a \u escape. */
const layouts = fc.constantFrom("compact", "indented", "ascii-escaped");
function layOut(value: unknown, layout: string): string {
  if (layout === "compact") return JSON.stringify(value);
  if (layout === "indented") return `\n ${JSON.stringify(value, null, "\t")}\r\n`;
  return JSON.stringify(value).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The forwarded variables a runtime may set (KUBE_IPAM_NODE_NAME too), each maybe absent. */
const forwardedEnv = fc.record(Object.fromEntries(FORWARDED_ENV.filter((k) => k !== "CNI_COMMAND").map((k) => [k, envText])),
  { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>;

describe("the request line", () => {
  test("carries the exact config text and the CNI_* variables given, nothing else, in pure ASCII", async () => {
    const standIn = startStandIn(answers("", 0));
    const base = confFor(standIn.socket);
    const property = fc.asyncProperty(
      fc.record({ name: unicodeText, note: unicodeText, ipamNote: unicodeText, dataDirTail: unicodeText }),
      layouts, forwardedEnv, fc.constantFrom(...FORWARDED_VERBS), fc.dictionary(fc.constantFrom("FOO", "CNI_OTHER", "KUBE_IPAM_X", "HOME"), envText),
      async (texts, layout, given, command, unrelated) => {
        const config = layOut({
          ...base, name: texts.name, "x-note": texts.note,
          ipam: { ...base.ipam, note: texts.ipamNote, dataDir: `/${texts.dataDirTail}` },
        }, layout);
        const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...unrelated, ...given, CNI_COMMAND: command };
        const before = Date.now();
        const r = await runForwarder(config, env);
        expect(r.exitCode).toBe(0);
        expect(r.stdout.length).toBe(0);

        const line = standIn.requests.at(-1)!;
        expect(line.every((b) => b >= 0x20 && b < 0x7f)).toBe(true);
        const request = decodeRequest(line.toString("utf8"))!;
        expect(request).toBeDefined();
        expect(request.stdin).toBe(config);
        // Exactly the forwarded variables that were set, not the others (decodeRequest would drop extras).
        expect(JSON.parse(line.toString("utf8")).env).toEqual({ ...given, CNI_COMMAND: command });
        expect(request.build).toStartWith(`${PACKAGE_VERSION}+`);
        expect(request.hostname).toBe(hostname());
        expect(request.startedAt).toBeGreaterThanOrEqual(before - 1);
        expect(request.startedAt).toBeLessThanOrEqual(Date.now());
        expect(request.acceptBy - request.startedAt).toBeGreaterThanOrEqual(ACCEPT_BUDGET_MS);
      });
    await fc.assert(property, { numRuns: 100 });
    expect(standIn.connections).toBe(100);
  }, 60_000);
});

/** Text of any code units, lone surrogates too (JSON.stringify writes those as \u escapes). */
const anyCodeUnits = fc.string({
  unit: fc.oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u)),
    fc.constantFrom("\0", "\n", "\r", "\"", "\\", "\u2028"),
  ),
  maxLength: 60,
});

describe("the answer", () => {
  test("is printed byte for byte, with a newline, and its exit status is the forwarder's", async () => {
    const standIn = startStandIn(answers("", 0));
    const config = JSON.stringify(confFor(standIn.socket));
    const property = fc.asyncProperty(anyCodeUnits, fc.constantFrom(0, 1), async (stdout, exitCode) => {
      standIn.script = answers(stdout, exitCode);
      const r = await runForwarder(config, call("ADD"));
      expect(r.exitCode).toBe(exitCode);
      // A lone surrogate reaches the runtime as U+FFFD, as Buffer.from writes it.
      expect(r.stdout.equals(stdout === "" ? Buffer.alloc(0) : Buffer.from(`${stdout}\n`, "utf8"))).toBe(true);
      expect(r.stderr).toBe("");
    });
    await fc.assert(property, { numRuns: 100 });
  }, 60_000);

  test("a long answer (3 MiB, read in many chunks) comes out whole", async () => {
    const stdout = "é😀x".repeat(400_000);
    const standIn = startStandIn(answers(stdout, 1));
    const r = await runForwarder(JSON.stringify(confFor(standIn.socket)), call("ADD"));
    expect(r.exitCode).toBe(1);
    expect(r.stdout.equals(Buffer.from(`${stdout}\n`, "utf8"))).toBe(true);
  }, 30_000);

  test("an answer some time after \"accepted\" (past the accept budget) is still waited for", async () => {
    const standIn = startStandIn({ ...answers(STAND_IN_ANSWER, 0), lastLineAfterMs: ACCEPT_BUDGET_MS + 300 });
    const r = await runForwarder(JSON.stringify(confFor(standIn.socket)), call("ADD"));
    expect(r.exitCode).toBe(0);
    expect(r.json.answeredBy).toBe("stand-in");
  }, 30_000);
});

// Reply lines near the protocol: each kind of message (or a mix of their keys) in any order, values mostly
// of the right type but of every JSON kind and number spelling too, a key repeated, whitespace around,
// garbage after; and arbitrary JSON and text, keys that only start like the protocol's (a \u0000 after
// them), and numbers spelled with more digits than a double holds.
const rawValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc.constantFrom("true", "false", "null", "0", "1", "2", "-1", "0.5", "\"0\"", "\"1\"", "\"\"", "\"\\ud800\"", "\"a\\u0000b\"",
    "[]", "{}", "01", "+1", "tru", "1.", ".5", "\"\\x\"", "\"unterminated"),
  anyCodeUnits.map((s) => JSON.stringify(s)),
);
const mostly = (right: fc.Arbitrary<string>) => fc.oneof({ weight: 5, arbitrary: right }, { weight: 1, arbitrary: rawValue });
const valueFor: Record<string, fc.Arbitrary<string>> = {
  accepted: mostly(fc.constant("true")),
  refused: mostly(anyCodeUnits.map((s) => JSON.stringify(s))),
  stdout: mostly(anyCodeUnits.map((s) => JSON.stringify(s))),
  exitCode: mostly(fc.constantFrom("0", "1", "1.0", "1e0", "-0", "0.0", "1E+0", "10e-1", "0.1e1", `0.${"0".repeat(70)}1e71`,
    `1${"0".repeat(70)}e-70`)),
  "accepted\\u0000": mostly(fc.constant("true")),
  "stdout\\u0000": mostly(anyCodeUnits.map((s) => JSON.stringify(s))),
  "exitCode\\u0000": mostly(fc.constantFrom("0", "1")),
  other: rawValue,
};
const keys = Object.keys(valueFor);
const entryOf = (k: string) => fc.tuple(fc.constant(k), valueFor[k]!, fc.constantFrom("", "", " ", "\t", "\r"));
const entries = fc.tuple(
  fc.oneof(fc.constant(["accepted"]), fc.constant(["refused"]), fc.constant(["stdout", "exitCode"]), fc.subarray(keys)),
  fc.array(fc.constantFrom(...keys), { maxLength: 1 }),
).chain(([kind, more]) => fc.shuffledSubarray([...kind, ...more], { minLength: kind.length + more.length }))
  .chain((ks) => fc.tuple(...ks.map(entryOf)));
const nearReplyLine = fc.tuple(
  fc.constantFrom("", "", " ", "\t"),
  entries,
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom("", " ", "\r") }, { weight: 1, arbitrary: fc.constantFrom("x", "}", ",", "\t{}") }),
).map(([before, es, after]) => `${before}{${es.map(([k, v, ws]) => `${ws}"${k}"${ws}:${ws}${v}${ws}`).join(",")}}${after}`);
const replyLine = fc.oneof(
  { weight: 6, arbitrary: nearReplyLine },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: anyCodeUnits },
).filter((l) => !l.includes("\n"));

describe("a reply line", () => {
  test("is read as protocol.ts decodeReply reads it: answer printed, accepted waited past, anything else falls back", async () => {
    const standIn = startStandIn(says());
    const conf = confFor(standIn.socket, { subnet: "10.11.0.0/16" });
    const property = fc.asyncProperty(replyLine, async (line) => {
      // The agent's bytes: what a JavaScript agent would write for this string.
      const meant = decodeReply(Buffer.from(line, "utf8").toString("utf8"));
      standIn.script = says(line, ACCEPTED, JSON.stringify({ stdout: STAND_IN_ANSWER, exitCode: 0 }));
      const env = call("ADD");
      const r = await runForwarder(JSON.stringify(conf), env);
      if (meant && "stdout" in meant) {
        expect(r.exitCode).toBe(meant.exitCode === 1 ? 1 : 0); // JSON's -0 is 0
        expect(r.stdout.equals(meant.stdout === "" ? Buffer.alloc(0) : Buffer.from(`${meant.stdout}\n`, "utf8"))).toBe(true);
      } else if (meant && "accepted" in meant) {
        expect(r.exitCode).toBe(0);
        expect(r.json?.answeredBy).toBe("stand-in");
      } else {
        expectCoreAddResult(r, "10.11.");
        const fallback = logLinesFor(conf.ipam.logFile, env)[0]?.agentFallback;
        if (meant && "refused" in meant) {
          // The reason travels in an environment variable: it ends at a NUL, and is UTF-8.
          const why = Buffer.from(meant.refused.split("\0")[0]!, "utf8").toString("utf8");
          expect(fallback).toBe(`agent at "${standIn.socket}" refused: ${why}`);
        } else {
          expect(fallback).toBe(`agent at "${standIn.socket}" sent a message that is not the protocol`);
        }
      }
    });
    await fc.assert(property, { numRuns: 80 });
  }, 120_000);
});

// ---- 3: which requests go to the agent ------------------------------------------------------------------

/** How the core answers a request the forwarder did not forward. */
type CoreAnswer = { result: "address" } | { code: number; msg?: string } | { version: true };

interface Routing {
  readonly name: string;
  /** The config text for a stand-in at `socket`, its files in `d`. */
  readonly config: (socket: string, d: string) => string;
  readonly command?: string;
  /** "forwarded", or the core's answer. */
  readonly expect: "forwarded" | CoreAnswer;
}

const json = (v: unknown) => JSON.stringify(v);
const netIn = (d: string, ipam: Record<string, unknown>) => fileNetConf(d, ipam);

const routing: Routing[] = [
  { name: "an absolute agentSocket: forwarded", config: (s, d) => json(netIn(d, { agentSocket: s })), expect: "forwarded" },
  ...[...FORWARDED_VERBS].map((verb): Routing => ({
    name: `${verb}: forwarded`, command: verb, config: (s, d) => json(netIn(d, { agentSocket: s })), expect: "forwarded",
  })),
  { name: "whitespace around the JSON, \\u escapes in keys and in the socket's path: forwarded",
    config: (s, d) => ` \r\n\t${json(netIn(d, { agentSocket: s })).replace('"ipam"', '"ip\\u0061m"').replace('"agentSocket"', '"agent\\u0053ocket"')
      .replace(/agent\.sock/, "agent\\u002esock")}\n\t `, expect: "forwarded" },
  { name: "agentSocket \"\": the core answers", config: (_s, d) => json(netIn(d, { agentSocket: "" })), expect: { result: "address" } },
  { name: "a relative agentSocket: the core reports it", config: (_s, d) => json(netIn(d, { agentSocket: "agent.sock" })),
    expect: { code: 7, msg: "not an absolute path" } },
  { name: "a relative dataDir: the core answers (in its working directory)", config: (s, d) => json(netIn(d, { agentSocket: s, dataDir: "relative-data" })),
    expect: { result: "address" } },
  { name: "a relative logFile: the core answers", config: (s, d) => json(netIn(d, { agentSocket: s, logFile: "relative.log" })),
    expect: { result: "address" } },
  { name: "a relative resolvConf: the core answers", config: (s, d) => json(netIn(d, { agentSocket: s, resolvConf: "resolv.conf" })),
    expect: { code: 7, msg: "resolv.conf" } },
  { name: "a relative etcdConfig.etcdCertFile: the core answers",
    config: (s, d) => json(netIn(d, { agentSocket: s, etcdConfig: { etcdURL: "https://127.0.0.1:1", etcdCertFile: "cert.pem", etcdKeyFile: "/k.pem" } })),
    expect: { code: 7, msg: "cert.pem" } },
  { name: "a relative kubeConfig: the core answers", config: (s, d) => json(netIn(d, { agentSocket: s, kubeConfig: "kubeconfig" })),
    expect: { result: "address" } },
  { name: "a relative etcdConfig.etcdTrustedCAFileFile (the seed's spelling): the core answers",
    config: (s, d) => json(netIn(d, { agentSocket: s, etcdConfig: { etcdURL: "https://127.0.0.1:1", etcdTrustedCAFileFile: "ca.pem" } })),
    expect: { code: 7, msg: "ca.pem" } },
  { name: "a relative etcdConfig.etcdTrustedCAFile: the core answers",
    config: (s, d) => json(netIn(d, { agentSocket: s, etcdConfig: { etcdURL: "https://127.0.0.1:1", etcdTrustedCAFile: "ca.pem" } })),
    expect: { code: 7, msg: "ca.pem" } },
  { name: "a relative dataDir overridden by a later absolute one: forwarded",
    config: (s, d) => json(netIn(d, { agentSocket: s })).replace('"dataDir":', '"dataDir":"relative","dataDir":'), expect: "forwarded" },
  { name: "a key that only starts like one (\\u0000 after it) is another key: agentSocket \"\" still turns forwarding off",
    config: (s, d) => json(netIn(d, { agentSocket: "" })).replace('"agentSocket":""', `"agentSocket":"","agentSocket\\u0000":${json(s)}`),
    expect: { result: "address" } },
  { name: "a relative dataDir stays relative past a \"dataDir\\u0000\" key: the core answers",
    config: (s, d) => json(netIn(d, { agentSocket: s, dataDir: "relative-data" })).replace('"dataDir":', '"dataDir\\u0000":"/abs","dataDir":'),
    expect: { result: "address" } },
  { name: "timeoutSeconds spelled with more than 63 characters is still read as a number",
    config: (s, d) => json(netIn(d, { agentSocket: s })).replace('"ipam":{', `"ipam":{"timeoutSeconds":0.${"0".repeat(70)}1e72,`),
    expect: "forwarded" },
  { name: "ipam not an object: the core reports it", config: (s, d) => json({ ...netIn(d, {}), ipam: s }), expect: { code: 7 } },
  { name: "duplicate ipam keys, the last without agent: the core answers (the last wins, as in JSON.parse)",
    config: (s, d) => `{"cniVersion":"1.0.0","name":"dup","type":"bridge","ipam":${json(netIn(d, { agentSocket: s }).ipam)},"ipam":${json(netIn(d, { agentSocket: "" }).ipam)}}`,
    expect: { result: "address" } },
  { name: "duplicate ipam keys, the last with the agent: forwarded",
    config: (s, d) => `{"cniVersion":"1.0.0","name":"dup","type":"bridge","ipam":${json(netIn(d, { agentSocket: "" }).ipam)},"ipam":${json(netIn(d, { agentSocket: s }).ipam)}}`,
    expect: "forwarded" },
  { name: "an ipam object, then ipam not an object: the core reports it",
    config: (s, d) => `{"cniVersion":"1.0.0","name":"dup","type":"bridge","ipam":${json(netIn(d, { agentSocket: s }).ipam)},"ipam":null}`,
    expect: { code: 7 } },
  { name: "invalid JSON: the core reports it", config: (s, d) => json(netIn(d, { agentSocket: s })).slice(0, -1), expect: { code: 6 } },
  { name: "text after the JSON: the core reports it", config: (s, d) => `${json(netIn(d, { agentSocket: s }))} {}`, expect: { code: 6 } },
  { name: "a UTF-8 byte order mark before the JSON: the core answers", config: (s, d) => `\ufeff${json(netIn(d, { agentSocket: s }))}`,
    expect: { result: "address" } },
  { name: "VERSION: never forwarded", command: "VERSION", config: (s, d) => json(netIn(d, { agentSocket: s })), expect: { version: true } },
  { name: "an unknown CNI_COMMAND: the core reports it", command: "FROB", config: (s, d) => json(netIn(d, { agentSocket: s })), expect: { code: 4 } },
];

describe("which requests are forwarded", () => {
  test.each(routing.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const d = freshDir("route");
    const r = await runForwarder(row.config(standIn.socket, d), call(row.command ?? "ADD"), { cwd: d });
    if (row.expect === "forwarded") {
      expect(standIn.requests.length).toBe(1);
      expect(r.exitCode).toBe(0);
      expect(r.json.answeredBy).toBe("stand-in");
      return;
    }
    expect(standIn.connections).toBe(0);
    expect(r.json?.answeredBy).toBeUndefined();
    const want = row.expect;
    if ("result" in want) expectCoreAddResult(r);
    else if ("version" in want) expect(r.json.supportedVersions).toContain("1.0.0");
    else if ("code" in want) {
      expect(r.exitCode).toBe(1);
      expect(r.json.code).toBe(want.code);
      if (want.msg) expect(r.json.msg).toContain(want.msg);
    }
  }, 30_000);

  test("a socket path with non-ASCII characters, written raw or as \\u escapes, is the path it names", async () => {
    const socketDir = join(freshDir("unicode"), "agënt-☃-😀");
    mkdirSync(socketDir);
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0), join(socketDir, "agent.sock"));
    const conf = json(confFor(standIn.socket));
    for (const text of [conf, layOut(JSON.parse(conf), "ascii-escaped")]) {
      const r = await runForwarder(text, call("ADD"));
      expect(r.json.answeredBy).toBe("stand-in");
    }
    expect(standIn.requests.length).toBe(2);
  }, 30_000);

  test("a relative dataDir is the core's working directory's, which the agent does not share", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const d = freshDir("reldata");
    const r = await runForwarder(json(netIn(d, { agentSocket: standIn.socket, dataDir: "state" })), call("ADD"), { cwd: d });
    expectCoreAddResult(r);
    expect(standIn.connections).toBe(0);
    expect(existsSync(join(d, "state"))).toBe(true);
  }, 30_000);

  test.skipIf(existsSync(DEFAULT_AGENT_SOCKET))("no agentSocket: the default socket is tried (here absent, so the core answers and says so)", async () => {
    const conf = fileNetConf(freshDir("default"));
    const env = call("ADD");
    const r = await runForwarder(json(conf), env);
    expectCoreAddResult(r);
    expect(logLinesFor(conf.ipam.logFile, env)[0]).toMatchObject({ servedBy: "plugin", agentFallback: `agent at "${DEFAULT_AGENT_SOCKET}": no socket` });
  }, 30_000);

  test("a fallback reason or start time already in the runtime's environment is not passed off as the forwarder's", async () => {
    const conf = fileNetConf(freshDir("stale"), { agentSocket: "" });
    const env = { ...call("ADD"), KUBE_IPAM_AGENT_FALLBACK: "stale", KUBE_IPAM_STARTED_AT: "1" };
    const r = await runForwarder(json(conf), env);
    expectCoreAddResult(r); // started at 1 (1970), the budget would long be spent
    const [line] = logLinesFor(conf.ipam.logFile, env);
    expect(line.servedBy).toBe("plugin");
    expect(line.agentFallback).toBeUndefined();
  }, 30_000);

  test("the CLI is the core's: `kube-ipam version` prints the version, with no connection to any agent", async () => {
    const r = await runForwarder(null, { PATH: process.env.PATH ?? "/usr/bin:/bin" }, { args: ["version"] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString("utf8")).toContain(PACKAGE_VERSION);
  }, 30_000);
});

// ---- 4: the agent fails to serve; the core does, and logs why -------------------------------------------

interface Fallback {
  readonly name: string;
  readonly script: Script;
  readonly reason: (socket: string) => string;
}

const fallbacks: Fallback[] = [
  { name: "refused", script: says(JSON.stringify({ refused: "x" })), reason: (s) => `agent at "${s}" refused: x` },
  { name: "refused after accepting", script: says(ACCEPTED, JSON.stringify({ refused: "busy ☃" })), reason: (s) => `agent at "${s}" refused: busy ☃` },
  { name: "a garbage line", script: says("hello, this is not JSON"), reason: (s) => `agent at "${s}" sent a message that is not the protocol` },
  { name: "garbage after accepting", script: says(ACCEPTED, "[1,2]"), reason: (s) => `agent at "${s}" sent a message that is not the protocol` },
  { name: "an exit status other than 0 or 1", script: says(ACCEPTED, JSON.stringify({ stdout: "", exitCode: 2 })),
    reason: (s) => `agent at "${s}" sent a message that is not the protocol` },
  { name: "an answer line over 16 MiB", script: says(ACCEPTED, JSON.stringify({ stdout: "x".repeat(17 * 1024 * 1024), exitCode: 0 })),
    reason: (s) => `agent at "${s}" sent a message that is not the protocol` },
  { name: "the connection closed without accepting", script: says(), reason: (s) => `agent at "${s}" closed the connection without accepting` },
  { name: "accepted, then the connection closed", script: says(ACCEPTED), reason: (s) => `agent at "${s}" closed the connection before answering` },
  { name: "half a line, then the connection closed", script: { ...says(), partialLine: '{"accep' }, reason: (s) => `agent at "${s}" closed the connection without accepting` },
];

describe("when the agent does not serve, the core does, and logs why", () => {
  test.each(fallbacks.map((f) => [f.name, f] as const))("%s", async (_name, f) => {
    const standIn = startStandIn(f.script);
    const conf = confFor(standIn.socket);
    const env = call("ADD");
    const r = await runForwarder(JSON.stringify(conf), env);
    expectCoreAddResult(r);
    expect(standIn.requests.length).toBe(1);
    expect(logLinesFor(conf.ipam.logFile, env)).toEqual([expect.objectContaining({ msg: "ADD ok", servedBy: "plugin", agentFallback: f.reason(standIn.socket) })]);
    // The address is really held: a retry through the core gets the same one.
    const again = await runForwarder(JSON.stringify({ ...conf, ipam: { ...conf.ipam, agentSocket: "" } }), env);
    expect(again.json.ips[0].address).toBe(r.json.ips[0].address);
  }, 60_000);

  test("a config that is not UTF-8 is not sent (the protocol carries text); the core reads it as it always did", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const conf = confFor(standIn.socket);
    const text = JSON.stringify({ ...conf, "x-note": "@" });
    const bytes = Buffer.from(text, "utf8");
    bytes[bytes.indexOf("@")] = 0xff;
    const env = call("ADD");
    const r = await runForwarder(bytes, env);
    expectCoreAddResult(r);
    expect(standIn.connections).toBe(0);
    expect(logLinesFor(conf.ipam.logFile, env)[0].agentFallback).toBe("the request holds bytes that are not UTF-8 text, which the agent's protocol carries");
  }, 30_000);

  test("a CNI variable that is not UTF-8 is not sent either", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const conf = confFor(standIn.socket);
    const env = call("ADD");
    // An environment of bytes: Bun.spawn takes strings, so a shell sets it.
    const r = await runForwarder(JSON.stringify(conf), env, { binary: "bash", args: ["-c", 'CNI_NETNS="$(printf "/x\\xff")" exec "$0"', BINARY] });
    expectCoreAddResult(r);
    expect(standIn.connections).toBe(0);
    expect(logLinesFor(conf.ipam.logFile, env)[0].agentFallback).toBe("the request holds bytes that are not UTF-8 text, which the agent's protocol carries");
  }, 30_000);

  test("a socket path longer than a unix socket's", async () => {
    const long = `/${"d".repeat(120)}/agent.sock`;
    const conf = fileNetConf(freshDir("long"), { agentSocket: long });
    const env = call("ADD");
    const r = await runForwarder(JSON.stringify(conf), env);
    expectCoreAddResult(r);
    expect(logLinesFor(conf.ipam.logFile, env)[0].agentFallback).toBe(`agent at "${long}": the path is longer than a unix socket's (107 bytes)`);
  }, 30_000);
});

// ---- 5: accepted, then silent ---------------------------------------------------------------------------

describe("an agent that accepted and never answers", () => {
  test("costs the invocation's budget plus slack; then the core says code 11 at once, without allocating", async () => {
    const standIn = startStandIn(saysThenHangs(ACCEPTED));
    const conf = confFor(standIn.socket, { timeoutSeconds: 1 });
    const env = call("ADD");
    const r = await runForwarder(JSON.stringify(conf), env);
    expect(r.exitCode).toBe(1);
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain(`the node agent at "${standIn.socket}" accepted the request but did not answer`);
    expect(r.ms).toBeLessThan(10_000); // a bound, not a measurement
    expect(standIn.requests.length).toBe(1);
    // The core did not run the ADD late: nothing is held.
    expect(await listAllocations({ ...conf, ipam: { ...conf.ipam, agentSocket: "" } }, dir.path)).toEqual([]);
  }, 30_000);
});

// ---- 6: where the core is -------------------------------------------------------------------------------

describe("the core next to the forwarder", () => {
  test("missing: a CNI request gets error 999 naming the core's path; the CLI a message on stderr", async () => {
    const alone = realpathSync(freshDir("alone"));
    const forwarder = join(alone, "kube-ipam");
    cpSync(BINARY, forwarder);
    const corePath = join(alone, "kube-ipam-core");

    const add = await runForwarder(JSON.stringify(fileNetConf(alone, { agentSocket: "" })), call("ADD"), { binary: forwarder });
    expect(add.exitCode).toBe(1);
    expect(add.json.code).toBe(999);
    expect(add.json.cniVersion).toBe("1.0.0");
    expect(add.json.msg).toContain(`"${corePath}"`);
    expect(add.stdout.toString("utf8")).toBe(`${JSON.stringify(add.json)}\n`);

    const version = await runForwarder(null, call("VERSION"), { binary: forwarder });
    expect(version.json.code).toBe(999);

    const cli = await runForwarder(null, { PATH: process.env.PATH ?? "/usr/bin:/bin" }, { binary: forwarder, args: ["version"] });
    expect(cli.exitCode).toBe(1);
    expect(cli.stdout.length).toBe(0);
    expect(cli.stderr).toContain(`"${corePath}"`);
  }, 30_000);

  test("reached through a symbolic link in another directory: the core next to the real file runs", async () => {
    const elsewhere = freshDir("linked");
    const link = join(elsewhere, "kube-ipam");
    symlinkSync(BINARY, link);
    expect(existsSync(CORE_BINARY)).toBe(true);
    const r = await runForwarder(JSON.stringify(fileNetConf(elsewhere, { agentSocket: "" })), call("ADD"), { binary: link });
    expectCoreAddResult(r);
    const cli = await runForwarder(null, { PATH: process.env.PATH ?? "/usr/bin:/bin" }, { binary: link, args: ["version"] });
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout.toString("utf8")).toContain(PACKAGE_VERSION);
  }, 30_000);
});

// ---- 7: the stdin limit ---------------------------------------------------------------------------------

/** A forwardable config padded to exactly `bytes` bytes. */
function configOfSize(socket: string, bytes: number): string {
  const conf = confFor(socket);
  const empty = JSON.stringify({ ...conf, pad: "" });
  const text = JSON.stringify({ ...conf, pad: "p".repeat(bytes - Buffer.byteLength(empty)) });
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

describe("stdin size", () => {
  test("a config of exactly 1 MiB is forwarded whole", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const text = configOfSize(standIn.socket, MAX_STDIN_BYTES);
    const r = await runForwarder(text, call("ADD"));
    expect(r.json.answeredBy).toBe("stand-in");
    expect(decodeRequest(standIn.requests[0]!.toString("utf8"))!.stdin).toBe(text);
  }, 30_000);

  test("one byte more is not sent: the core's code 6, exactly what the core alone says", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const text = configOfSize(standIn.socket, MAX_STDIN_BYTES + 1);
    const env = call("ADD");
    const viaForwarder = await runForwarder(text, env);
    expect(standIn.connections).toBe(0);
    expect(viaForwarder.exitCode).toBe(1);
    expect(viaForwarder.json.code).toBe(6);
    const coreAlone = await runForwarder(text, env, { binary: CORE_BINARY });
    expect(viaForwarder.stdout.toString("utf8")).toBe(coreAlone.stdout.toString("utf8"));
  }, 30_000);

  test("far more (4 MiB) gets the same code 6", async () => {
    const standIn = startStandIn(answers(STAND_IN_ANSWER, 0));
    const r = await runForwarder(configOfSize(standIn.socket, 4 * MAX_STDIN_BYTES), call("ADD"));
    expect(standIn.connections).toBe(0);
    expect(r.json.code).toBe(6);
  }, 30_000);
});
