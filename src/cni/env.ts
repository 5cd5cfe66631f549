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

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateContainerID(id: string): void {
  if (id === "") throw new CniError(ErrorCode.InvalidEnvironment, "missing containerID");
  if (!CONTAINER_ID.test(id)) {
    throw new CniError(ErrorCode.InvalidEnvironment, "invalid characters in containerID", id);
  }
}

export function validateInterfaceName(name: string): void {
  const fail = (msg: string) => new CniError(ErrorCode.InvalidEnvironment, msg, name);
  if (name === "") throw fail("interface name is empty");
  // The kernel limit (IFNAMSIZ 16 with the NUL) is in bytes, as libcni counts it: "é" is two.
  if (new TextEncoder().encode(name).length > 15) throw fail("interface name is too long: at most 15 characters");
  if (name === "." || name === "..") throw fail("interface name is . or ..");
  if (/[/:\s]/.test(name)) throw fail("interface name contains / or : or whitespace characters");
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
