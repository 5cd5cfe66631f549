// JSON lines appended to the log file (created 0600). Never stdout: stdout belongs to the CNI
// result. When the file cannot be written the lines go to stderr and the verb carries on.
import { appendFileSync, chmodSync, mkdirSync } from "node:fs";
import { parentDir } from "../lib/path.ts";
import type { LogLevel } from "../config/log_level.ts";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  #fallback = false;

  constructor(readonly file: string | undefined, readonly level: LogLevel = "info") {}

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (RANK[level] < RANK[this.level]) return;
    const line = `${JSON.stringify({ time: new Date().toISOString(), level, msg, pid: process.pid, ...fields }, bigintJSON)}\n`;
    if (this.file && !this.#fallback) {
      try {
        appendToLog(this.file, line);
        return;
      } catch (e) {
        this.#fallback = true;
        process.stderr.write(`kube-ipam: cannot write log file "${this.file}" (${(e as Error).message}); logging to stderr\n`);
      }
    }
    process.stderr.write(line);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
}

function bigintJSON(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

function appendToLog(file: string, line: string): void {
  try {
    appendFileSync(file, line, { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    mkdirSync(parentDir(file), { recursive: true, mode: 0o755 });
    appendFileSync(file, line, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}
