// `--conf FILE`: a .conf or .conflist (or /dev/stdin) read the way the plugin reads its stdin.
import { readFileSync } from "node:fs";
import { hostname } from "../lib/hostname.ts";
import { ConfigError } from "../config/errors.ts";
import { type IpamConfig, loadIpamConfig } from "../config/ipam_config.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../config/network_file.ts";
import { UsageError } from "./flags.ts";

export function loadConfFile(path: string | undefined): IpamConfig {
  if (!path) throw new UsageError("This command needs --conf FILE: the CNI network config (.conf or .conflist)");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`--conf "${path}"`, `cannot read the file: ${(e as Error).message}`, { cause: e });
  }
  const doc = selectKubeIpamConfig(decodeNetworkConfig(text, `"${path}"`), `"${path}"`);
  return loadIpamConfig(doc, { envNodeName: process.env.KUBE_IPAM_NODE_NAME, hostname });
}
