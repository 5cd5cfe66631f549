// The file store's filesystem steps: each one syscall or close to it, each failure a StoreError that
// names the path, a missing file a value rather than an exception where callers expect it.
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync,
  writeSync } from "node:fs";
import { joinPath } from "../../lib/path.ts";
import { decodeRecord } from "../record.ts";
import { type Allocation, StoreError } from "../store.ts";

export function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

export function ioError(action: string, path: string, e: unknown): StoreError {
  const full = code(e) === "ENOSPC" || code(e) === "EDQUOT" ? " (the file system of the data directory is full: free space there)" : "";
  return new StoreError(`Cannot ${action} "${path}": ${(e as Error).message}${full}`, false, { cause: e });
}

/** Runs `fn`, turning ENOENT into `fallback` and other failures into a StoreError naming the path. */
export function tolerateMissing<T>(action: string, path: string, fallback: T, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (code(e) === "ENOENT") return fallback;
    throw ioError(action, path, e);
  }
}

export function listDir(path: string): string[] {
  return tolerateMissing("list", path, [] as string[], () => readdirSync(path));
}

export function removeFile(path: string): void {
  tolerateMissing("remove", path, undefined, () => unlinkSync(path));
}

export function inode(path: string): number | undefined {
  return tolerateMissing("stat", path, undefined, () => statSync(path).ino);
}

export function readRecord(path: string): Allocation | undefined {
  const text = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8"));
  return text === undefined ? undefined : decodeRecord(text);
}

/**
 * Runs `op`, which creates `path`; when the directory of `path` is missing, makes it and runs `op`
 * again. One syscall in the common case, where the directory exists.
 */
function makingDir<T>(path: string, op: () => T): T {
  try {
    return op();
  } catch (e) {
    if (code(e) !== "ENOENT") throw e;
    mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    return op();
  }
}

/** open(2) with `flags` (mode 0644), making the file's directory on first use. */
export function openMakingDir(path: string, flags: string | number): number {
  return makingDir(path, () => openSync(path, flags, 0o644));
}

/** link(2), making the target's directory on first use. */
export function linkMakingDir(from: string, to: string): void {
  makingDir(to, () => linkSync(from, to));
}

/**
 * Creates `path` holding `text`, fsynced (so that a power loss cannot leave an empty claim behind),
 * making its directory on first use. False when `path` exists; a failed write leaves no file.
 */
export function writeNew(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openMakingDir(path, "wx");
  } catch (e) {
    if (code(e) === "EEXIST") return false;
    throw e;
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    removeFile(path);
    throw e;
  }
  closeSync(fd);
  return true;
}

let tmpCounter = 0;

/** Writes `text` to a fresh file in `dir` (see writeNew) and returns its path. */
export function writeTmp(dir: string, text: string): string {
  const path = joinPath(dir, `${process.pid}.${Date.now()}.${tmpCounter++}`);
  try {
    if (!writeNew(path, text)) throw new Error("the file exists");
  } catch (e) {
    throw ioError("write", path, e);
  }
  return path;
}
