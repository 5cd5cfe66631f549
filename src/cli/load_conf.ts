// `--conf FILE`: a .conf or .conflist (or standard input: `-`, /dev/stdin) read the way the plugin reads its stdin.
import { readFileSync } from "node:fs";
import { hostname } from "../lib/hostname.ts";
import { ConfigError } from "../config/errors.ts";
import { type IpamConfig, loadIpamConfig } from "../config/ipam_config.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../config/network_file.ts";
import { decodeChunks, MAX_STDIN_BYTES, readAvailable } from "../plugin/stdin.ts";
import { UsageError } from "./flags.ts";

/** Names of standard input. Opening /dev/stdin fails (ENXIO) when it is a socket, as a parent's pipe may be. */
const STDIN_NAMES = new Set(["-", "/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"]);

/** Descriptor 0 until end of file, at most MAX_STDIN_BYTES; a non-blocking one that runs dry is polled. */
function readStdinSync(source: string): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const got = readAvailable(0, MAX_STDIN_BYTES, source, total);
    chunks.push(...got.chunks);
    total = got.total;
    if (!got.blocked) return decodeChunks(chunks);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

function readConf(path: string): string {
  try {
    return STDIN_NAMES.has(path) ? readStdinSync(`"${path}"`) : readFileSync(path, "utf8");
  } catch (e) {
    if (!(e as NodeJS.ErrnoException).code) throw e; // too large: a DecodeError, code 6
    throw new ConfigError(`--conf "${path}"`, `cannot read the file: ${(e as Error).message}`, { cause: e });
  }
}

export function loadConfFile(path: string | undefined): IpamConfig {
  return loadConfWithIpam(path).config;
}

/** The config, and its raw ipam section (for a command that reads more than one store's settings from it). */
export function loadConfWithIpam(path: string | undefined): { config: IpamConfig; ipam: Record<string, unknown> } {
  if (!path) throw new UsageError("This command needs --conf FILE: the CNI network config (.conf or .conflist)");
  const text = readConf(path);
  const doc = selectKubeIpamConfig(decodeNetworkConfig(text, `"${path}"`), `"${path}"`);
  const config = loadIpamConfig(doc, { envNodeName: process.env.KUBE_IPAM_NODE_NAME, hostname });
  return { config, ipam: (doc as { ipam: Record<string, unknown> }).ipam };
}
