// Placeholder until the etcd store lands (issue 3).
import { ConfigError } from "../../config/errors.ts";
import type { EtcdStoreConfig } from "../../config/store_config.ts";
import type { Store } from "../store.ts";

export class EtcdStore {
  static open(_config: EtcdStoreConfig): Promise<Store> {
    throw new ConfigError("ipam.etcdConfig", "the etcd store is not available in this build");
  }
}
