// An exclusive flock(2) on a lock file, through libc. The kernel drops it when the process dies,
// so a plugin killed while holding it can never block the others.
import { closeSync, openSync } from "node:fs";
import { StoreError } from "../store.ts";

const LOCK_EX = 2;

let libc: { flock(fd: number, op: number): number } | undefined;

async function flockFn(): Promise<(fd: number, op: number) => number> {
  if (!libc) {
    const { dlopen, FFIType } = await import("bun:ffi");
    libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } }).symbols;
  }
  return libc.flock;
}

/** Runs `fn` holding the exclusive lock on `path` (created when missing). */
export async function withFileLock<T>(path: string, fn: () => T | Promise<T>): Promise<T> {
  let fd: number;
  try {
    const flock = await flockFn();
    fd = openSync(path, "a", 0o600);
    if (flock(fd, LOCK_EX) !== 0) {
      closeSync(fd);
      throw new Error("flock(2) failed");
    }
  } catch (e) {
    throw new StoreError(`Cannot lock "${path}": ${(e as Error).message}`, false, { cause: e });
  }
  try {
    return await fn();
  } finally {
    closeSync(fd); // closing the descriptor releases the lock
  }
}
