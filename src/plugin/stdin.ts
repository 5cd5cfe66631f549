// The network configuration on stdin. Read synchronously: Bun.stdin.text() costs about 2 ms of CPU
// per call (it starts Bun's stream machinery), a fifth of a whole ADD on the embedded store.
import { readSync } from "node:fs";

const CHUNK = 64 * 1024;

/**
 * Everything readable from `fd` until end of file. A non-blocking descriptor that runs dry before
 * its end (EAGAIN) is finished by `rest`, which waits for the remaining bytes; what was already read
 * is kept.
 */
export async function readAll(fd: number, rest: () => Promise<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const buf = new Uint8Array(CHUNK);
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      chunks.push(await rest());
      break;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
  }
  return chunks.length === 1 ? new TextDecoder().decode(chunks[0]) : Buffer.concat(chunks).toString("utf8");
}

export function readStdin(): Promise<string> {
  return readAll(0, () => Bun.stdin.bytes());
}
