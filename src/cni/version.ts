// The CNI specification versions this plugin speaks, and what each allows.
import { CniError, ErrorCode } from "./errors.ts";
import { quote } from "../lib/quote.ts";

export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = "1.1.0";

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares dotted versions numerically: "0.10.0" > "0.4.0". */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A config without cniVersion is 0.1.0, as libcni reads it. */
export function checkConfigVersion(v: unknown): CniVersion {
  const version = v === undefined || v === "" ? "0.1.0" : v;
  if (isSupportedVersion(version)) return version;
  throw new CniError(
    ErrorCode.IncompatibleVersion,
    "incompatible CNI versions",
    `config is ${quote(version)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
  );
}

/** CHECK needs 0.4.0, STATUS and GC need 1.1.0: the spec's error otherwise. */
export function requireVersionFor(command: string, version: CniVersion): void {
  const minimum = command === "CHECK" ? "0.4.0" : command === "GC" || command === "STATUS" ? "1.1.0" : undefined;
  if (minimum && compareVersions(version, minimum) < 0) {
    throw new CniError(ErrorCode.IncompatibleVersion, `config version does not allow ${command}`,
      `${command} needs cniVersion ${minimum} or later; the config says ${version}`);
  }
}
