import { ConfigError } from "./errors.ts";
import { quote } from "../lib/quote.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(v: string | undefined): LogLevel {
  if (v === undefined) return "info";
  const level = v.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new ConfigError("ipam.logLevel", `${quote(v)} is not one of ${LOG_LEVELS.join(", ")}`);
}
