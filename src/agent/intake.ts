// What the agent reads from a connection before its request line is complete, bounded against clients that
// connect and never finish (anyone root on the node, or a buggy client): without bounds, each connection could
// buffer megabytes and connections are unbounded, so memory is too. A real plugin (the forwarder) writes its
// whole line, kilobytes, at once right after connecting, so it spends milliseconds here; the bounds turn away
// only what no plugin does, and a plugin turned away runs the request itself (nothing is lost but speed).
//
//   - a line longer than MAX_LINE_BYTES:                         refused ("oversize")
//   - more than MAX_PENDING connections without their line:      the oldest refused ("busy")
//   - more than MAX_PENDING_BYTES buffered by all of them:       the oldest refused until it fits ("busy")
//   - no whole line LINE_DEADLINE_MS after the agent took it:    refused ("slow": a slow loris)
//   - the peer shut its side before the newline:                 closed ("incomplete")
//
// Turning the oldest away, not the newest, is what keeps real plugins served during a storm: an idle attacker's
// connections are old, a plugin's is new and done within milliseconds. Requests whose line was read (and then
// accepted) are no longer counted here: the bounds are on what is read before, never on requests in flight.
import { ACCEPT_BUDGET_MS } from "./protocol.ts";

/** A request line longer than this is no plugin's: network configs are kilobytes. */
export const MAX_LINE_BYTES = 1024 * 1024;
/**
 * Connections at once that have not sent their line. Above any burst of real ones: a node's pods (110 by
 * default) all starting at once, or the agent resumed after a freeze and taking its whole backlog in one turn.
 */
export const MAX_PENDING = 512;
/** Bytes buffered for all of them together: the memory bound (about eight maximal lines). */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/**
 * How long a connection may take to send its line. A plugin stops waiting ACCEPT_BUDGET_MS after it connected,
 * and a line read later is dropped as late anyway (protocol.ts), so twice that loses no request. A timer, not
 * Bun's socket.timeout(): that one is an idle timeout (every byte restarts it, which a slow loris exploits)
 * with a granularity of seconds.
 */
export const LINE_DEADLINE_MS = 2 * ACCEPT_BUDGET_MS;

export type DropReason = "busy" | "oversize" | "slow" | "incomplete";

interface Pending {
  readonly parts: Uint8Array[];
  bytes: number;
  readonly timer: ReturnType<typeof setTimeout>;
}

const NEWLINE = 0x0a;
const decoder = new TextDecoder();

export class Intake<S extends object> {
  /** Connections without their line, oldest first (a Map keeps insertion order). */
  readonly #pending = new Map<S, Pending>();
  #bytes = 0;
  /** Bytes read since the last collection. */
  #read = 0;

  constructor(
    /** Turns `s` away: the caller answers (or just closes) and counts it. `s` is already forgotten here. */
    private readonly drop: (s: S, reason: DropReason, why: string) => void,
  ) {}

  /** A new connection: it waits for its line, the oldest waiting one turned away when there are too many. */
  opened(s: S): void {
    for (const old of this.#pending.keys()) {
      if (this.#pending.size < MAX_PENDING) break;
      this.#drop(old, "busy", `too many connections (${MAX_PENDING}) have not sent their request`);
    }
    const timer = setTimeout(() => this.#drop(s, "slow", `no request line within ${LINE_DEADLINE_MS} ms`), LINE_DEADLINE_MS);
    this.#pending.set(s, { parts: [], bytes: 0, timer });
  }

  /**
   * Bytes read from `s`: its request line once the newline is in (decoded; nothing after the newline counts),
   * else undefined. Bytes of a connection not waiting (its line was read, or it was turned away) are ignored.
   */
  read(s: S, chunk: Uint8Array): string | undefined {
    this.#collect(chunk.length);
    const p = this.#pending.get(s);
    if (!p) return undefined;
    const nl = chunk.indexOf(NEWLINE);
    const more = nl < 0 ? chunk.length : nl;
    if (p.bytes + more > MAX_LINE_BYTES) {
      this.#drop(s, "oversize", `the request line is longer than ${MAX_LINE_BYTES} bytes`);
      return undefined;
    }
    if (nl >= 0) {
      this.#forget(s, p);
      p.parts.push(chunk.subarray(0, nl));
      // A newline byte is never part of a UTF-8 sequence, so the bytes before it decode whole.
      return decoder.decode(p.parts.length === 1 ? p.parts[0] : Buffer.concat(p.parts));
    }
    for (const old of this.#pending.keys()) {
      if (this.#bytes + chunk.length <= MAX_PENDING_BYTES) break;
      if (old !== s) this.#drop(old, "busy", `too many bytes (${MAX_PENDING_BYTES}) are buffered for requests not yet sent whole`);
    }
    // Kept as it is, not copied: Bun hands each read a buffer of its own (test/integration/agent.test.ts reads
    // a line split across reads).
    p.parts.push(chunk);
    p.bytes += chunk.length;
    this.#bytes += chunk.length;
    return undefined;
  }

  /** The peer shut its side: without its line, it can never send one. */
  ended(s: S): void {
    if (this.#pending.has(s)) this.#drop(s, "incomplete", "the connection ended before a whole request line");
  }

  /** The connection is gone. */
  closed(s: S): void {
    const p = this.#pending.get(s);
    if (p) this.#forget(s, p);
  }

  #drop(s: S, reason: DropReason, why: string): void {
    const p = this.#pending.get(s);
    if (!p) return;
    this.#forget(s, p);
    this.drop(s, reason, why);
  }

  /**
   * The bound on what is buffered is a bound on memory only once what was read and let go (turned away, or a
   * line decoded and refused) is collected, and JSC collects by its own heuristics: under a storm of 190 MiB
   * of megabyte lines they let 50 to 90 MiB of such buffers pile up (measured; an asynchronous hint,
   * Bun.gc(false), did little). A synchronous collection whenever MAX_PENDING_BYTES more have been read keeps
   * the peak some 20 MiB above the baseline, for a millisecond or two each on the agent's small heap
   * (that storm: 24 of them, 20 to 70 ms of CPU in all). An attacker pays for each with 8 MiB sent; real
   * plugins, with kilobytes a request, cause one every few thousand requests.
   */
  #collect(bytes: number): void {
    this.#read += bytes;
    if (this.#read < MAX_PENDING_BYTES) return;
    this.#read = 0;
    Bun.gc(true);
  }

  #forget(s: S, p: Pending): void {
    clearTimeout(p.timer);
    this.#bytes -= p.bytes;
    this.#pending.delete(s);
  }
}
