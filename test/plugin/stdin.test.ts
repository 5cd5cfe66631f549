import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readAll } from "../../src/plugin/stdin.ts";
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
