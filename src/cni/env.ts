// The CNI_* environment, validated the way libcni's skel does before any work is done.
import { CniError, ErrorCode } from "./errors.ts";

export const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type Command = (typeof COMMANDS)[number];

export interface CniEnv {
  readonly command: Command;
  readonly containerID: string;
  readonly netns: string;
  readonly ifName: string;
  readonly args: string;
  readonly path: string;
}

type Var = "CNI_CONTAINERID" | "CNI_NETNS" | "CNI_IFNAME" | "CNI_PATH";

// Which variables each command needs (skel's reqForCmd).
const REQUIRED: Record<Var, readonly Command[]> = {
  CNI_CONTAINERID: ["ADD", "DEL", "CHECK"],
  CNI_NETNS: ["ADD", "CHECK"],
  CNI_IFNAME: ["ADD", "DEL", "CHECK"],
  CNI_PATH: ["ADD", "DEL", "CHECK", "GC", "STATUS"],
};

// The CNI specification (SPEC.md, "Parameters", CNI_CONTAINERID): "Must not be empty. Must start with an
// alphanumeric character, optionally followed by any combination of one or more alphanumeric characters,
// underscore (_), dot (.) or hyphen (-)."
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * The spec sets no length; the stores need one. The embedded store names a file
 * "<containerID>:<ifName>:<32 hex digits>" and a file name holds at most 255 bytes (NAME_MAX), which
 * leaves 206 for the ID; etcd keys have no such bound, but both stores must take the same IDs. Runtimes
 * use 64 hex digits (containerd, CRI-O, Docker, Podman): 128 is twice that.
 */
export const MAX_CONTAINER_ID_BYTES = 128;

/** The kernel's IFNAMSIZ (16) less its NUL, in bytes as libcni counts: "é" is two. */
export const MAX_IFNAME_BYTES = 15;

function refuse(variable: "CNI_CONTAINERID" | "CNI_IFNAME", message: string, value: string): CniError {
  // A refused value can be megabytes: details keep its start.
  const shown = value.length > MAX_CONTAINER_ID_BYTES ? `${value.slice(0, 64)}... (${value.length} characters)` : value;
  return new CniError(ErrorCode.InvalidEnvironment, `Invalid ${variable}: ${message}`, shown);
}

export function validateContainerID(id: string): void {
  if (id === "") throw refuse("CNI_CONTAINERID", "missing containerID", id);
  if (!CONTAINER_ID.test(id)) {
    throw refuse("CNI_CONTAINERID",
      'invalid characters in containerID: letters, digits, "_", "." and "-", starting with a letter or digit', id);
  }
  if (id.length > MAX_CONTAINER_ID_BYTES) {
    throw refuse("CNI_CONTAINERID", `containerID is too long: ${id.length} bytes, at most ${MAX_CONTAINER_ID_BYTES}`, id);
  }
}

// C0 and C1 control characters and DEL: a name is written into file names, etcd keys and log lines.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function validateInterfaceName(name: string): void {
  const fail = (msg: string) => refuse("CNI_IFNAME", msg, name);
  // libcni's checks (ValidateInterfaceName), in its order, then control characters, which it lets through.
  if (name === "") throw fail("interface name is empty");
  if (new TextEncoder().encode(name).length > MAX_IFNAME_BYTES) {
    throw fail(`interface name is too long: at most ${MAX_IFNAME_BYTES} bytes`);
  }
  if (name === "." || name === "..") throw fail("interface name is . or ..");
  if (/[/:\s]/.test(name)) throw fail("interface name contains / or : or whitespace characters");
  if (CONTROL.test(name)) throw fail("interface name contains control characters");
}

export function isCommand(s: string | undefined): s is Command {
  return (COMMANDS as readonly string[]).includes(s ?? "");
}

/** Reads and validates the CNI environment; throws CniError code 4 naming every missing variable. */
export function readCniEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND;
  if (!isCommand(command)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`,
      `expected one of ${COMMANDS.join(", ")}`);
  }
  const missing = (Object.keys(REQUIRED) as Var[]).filter((v) =>
    REQUIRED[v].includes(command) && (env[v] === undefined || env[v] === "")
  );
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(",")}] missing`);
  }
  const e: CniEnv = {
    command,
    containerID: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifName: env.CNI_IFNAME ?? "",
    args: env.CNI_ARGS ?? "",
    path: env.CNI_PATH ?? "",
  };
  if (REQUIRED.CNI_CONTAINERID.includes(command)) validateContainerID(e.containerID);
  if (REQUIRED.CNI_IFNAME.includes(command)) validateInterfaceName(e.ifName);
  return e;
}
