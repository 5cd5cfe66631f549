// The network configuration on stdin. Read synchronously: Bun.stdin.text() costs about 2 ms of CPU
// per call (it starts Bun's stream machinery), a fifth of a whole ADD on the embedded store.
import { readSync } from "node:fs";
import { DecodeError } from "../config/errors.ts";

const CHUNK = 64 * 1024;

/**
 * The most stdin may hold. Network configs are kilobytes, a prevResult included (a few addresses,
 * interfaces and routes); a runtime never sends a megabyte, so more is a mistake or an attack, refused
 * before it is read whole or parsed (code 6: the content cannot be decoded as a network config).
 */
export const MAX_STDIN_BYTES = 1024 * 1024;

export interface ReadOptions {
  /** Where the bytes come from, for the message ("stdin", `"/dev/stdin"`). */
  readonly source?: string;
  readonly limit?: number;
}

function tooLarge(source: string, limit: number): DecodeError {
  return new DecodeError(
    `Cannot decode network config from ${source}: it is larger than ${limit} bytes (network configs are kilobytes)`,
  );
}

export interface Available {
  readonly chunks: Uint8Array[];
  readonly total: number;
  readonly blocked: boolean;
}

/**
 * What a synchronous read of `fd` gets until end of file or until it would block (EAGAIN): then
 * `blocked` is true and the caller waits for the rest its own way. `total` counts `readBefore` bytes
 * read earlier too; past `limit` it throws DecodeError.
 */
export function readAvailable(fd: number, limit: number, source: string, readBefore = 0): Available {
  const chunks: Uint8Array[] = [];
  let total = readBefore;
  for (;;) {
    // One byte past the limit is enough to know it is too much.
    const buf = new Uint8Array(Math.min(CHUNK, limit + 1 - total));
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      return { chunks, total, blocked: true };
    }
    if (n === 0) return { chunks, total, blocked: false };
    chunks.push(buf.subarray(0, n));
    total += n;
    if (total > limit) throw tooLarge(source, limit);
  }
}

export function decodeChunks(chunks: readonly Uint8Array[]): string {
  return chunks.length === 1 ? new TextDecoder().decode(chunks[0]) : Buffer.concat(chunks).toString("utf8");
}

/**
 * Everything readable from `fd` until end of file, at most `limit` bytes (else DecodeError, code 6).
 * A non-blocking descriptor that runs dry before its end (EAGAIN) is finished by `rest`, which waits
 * for at most the `remaining` bytes allowed, plus one; what was already read is kept.
 */
export async function readAll(fd: number, rest: (remaining: number) => Promise<Uint8Array>,
  options: ReadOptions = {}): Promise<string> {
  const { source = "stdin", limit = MAX_STDIN_BYTES } = options;
  const { chunks, total, blocked } = readAvailable(fd, limit, source);
  if (blocked) {
    const tail = await rest(limit - total);
    if (total + tail.length > limit) throw tooLarge(source, limit);
    chunks.push(tail);
  }
  return decodeChunks(chunks);
}

/** Reads `stream` until its end or until more than `max` bytes have come, and stops reading there. */
async function readUpTo(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  try {
    while (total <= max) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      chunks.push(value);
      total += value.length;
    }
  } finally {
    // Stopped early: cancel, so that an open stdin does not keep the process waiting.
    if (!ended) await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks);
}

export function readStdin(): Promise<string> {
  return readAll(0, (remaining) => readUpTo(Bun.stdin.stream(), remaining));
}
