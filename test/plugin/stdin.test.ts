import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DecodeError } from "../../src/config/errors.ts";
import { MAX_STDIN_BYTES, readAll } from "../../src/plugin/stdin.ts";
import { tempDir } from "../support/plugin.ts";

describe("readAll (the plugin's stdin)", () => {
  const open: number[] = [];
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => {
    for (const fd of open.splice(0)) closeSync(fd);
    for (const d of dirs.splice(0)) d.cleanup();
  });

  function scratch(name: string): string {
    const dir = tempDir("stdin-");
    dirs.push(dir);
    return join(dir.path, name);
  }

  function fifo(): { reader: number; writer: number } {
    const path = scratch("fifo");
    if (Bun.spawnSync(["mkfifo", path]).exitCode !== 0) throw new Error("mkfifo failed");
    // Non-blocking, as some callers hand stdin over; the writer stays open, so a drained pipe is EAGAIN.
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(path, constants.O_WRONLY);
    open.push(reader);
    return { reader, writer };
  }

  test("a non-blocking stdin that runs dry keeps what was read and finishes with the rest", async () => {
    const { reader, writer } = fifo();
    writeSync(writer, '{"cniVersion":"1.0.0",');
    let restCalled = false;
    const text = await readAll(reader, async () => {
      restCalled = true;
      writeSync(writer, '"name":"n"}');
      closeSync(writer);
      return readRemaining(reader);
    });
    expect(restCalled).toBe(true);
    expect(JSON.parse(text)).toEqual({ cniVersion: "1.0.0", name: "n" });
  });

  test("a file is read whole, past one chunk, without the fallback", async () => {
    const path = scratch("conf.json");
    const big = JSON.stringify({ cniVersion: "1.0.0", name: "n", pad: "x".repeat(200_000), last: "é" });
    await Bun.write(path, big);
    const fd = openSync(path, "r");
    open.push(fd);
    const text = await readAll(fd, () => Promise.reject(new Error("the fallback must not run for a file")));
    expect(text).toBe(big);
  });

  test("1 MiB is read; one byte more is refused before it is read whole (DecodeError, code 6)", async () => {
    const path = scratch("big.json");
    await Bun.write(path, "x".repeat(MAX_STDIN_BYTES));
    const fd = openSync(path, "r");
    open.push(fd);
    expect(await readAll(fd, () => Promise.reject(new Error("unexpected")))).toHaveLength(MAX_STDIN_BYTES);

    await Bun.write(path, "x".repeat(5 * MAX_STDIN_BYTES));
    const big = openSync(path, "r");
    open.push(big);
    const err = await readAll(big, () => Promise.reject(new Error("unexpected"))).catch((e) => e);
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.message).toBe(`Cannot decode network config from stdin: it is larger than ${MAX_STDIN_BYTES} bytes (network configs are kilobytes)`);
    // It stopped one byte past the limit: the rest is still unread.
    let unread = 0;
    for (let n; (n = readSync(big, new Uint8Array(1 << 20))) > 0;) unread += n;
    expect(unread).toBe(5 * MAX_STDIN_BYTES - (MAX_STDIN_BYTES + 1));
  });

  test("the limit holds for what a non-blocking stdin delivers after running dry", async () => {
    const { reader, writer } = fifo();
    writeSync(writer, "x".repeat(1000));
    let asked = -1;
    const err = await readAll(reader, async (remaining) => {
      asked = remaining;
      return new Uint8Array(remaining + 1);
    }, { limit: 4000, source: '"-"' }).catch((e) => e);
    closeSync(writer);
    expect(asked).toBe(3000);
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.message).toStartWith('Cannot decode network config from "-": it is larger than 4000 bytes');
  });

  test("an empty stdin is the empty string", async () => {
    const fd = openSync("/dev/null", "r");
    open.push(fd);
    expect(await readAll(fd, () => Promise.reject(new Error("unexpected")))).toBe("");
  });
});

/** The remaining bytes of a non-blocking fd whose writer has closed. */
function readRemaining(fd: number): Uint8Array {
  const buf = new Uint8Array(4096);
  const n = readSync(fd, buf);
  return buf.subarray(0, n);
}
