import { existsSync } from "node:fs";
import { DEFAULT_KUBECONFIG, type IpamConfig } from "../config/ipam_config.ts";

/** The kubeconfig to use: the configured one, else the seed's default path when that file exists. */
export function kubeConfigPath(config: IpamConfig): string | undefined {
  if (config.kubeConfig) return config.kubeConfig;
  return existsSync(DEFAULT_KUBECONFIG) ? DEFAULT_KUBECONFIG : undefined;
}
