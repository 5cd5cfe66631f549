// The one place where any error becomes a CNI error code.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { ConfigError, DecodeError } from "../config/errors.ts";
import { EtcdConfigError, EtcdRequestError, EtcdTlsError, EtcdUnavailableError, RESOURCE_EXHAUSTED } from "../store/etcd/errors.ts";
import { KubeConfigError, KubeUnavailableError } from "../k8s/errors.ts";
import { StoreError } from "../store/store.ts";
import { AddressInUseError, AddressReservedError, AddressUnavailableError, PoolExhaustedError } from "./errors.ts";

export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof DecodeError) return new CniError(ErrorCode.DecodingFailure, e.message, "", { cause: e });
  if (e instanceof ConfigError) return new CniError(ErrorCode.InvalidConfig, e.message, e.field, { cause: e });
  if (e instanceof StoreError) {
    return new CniError(e.retryable ? ErrorCode.TryAgainLater : ErrorCode.IOFailure, e.message, "", { cause: e });
  }
  if (e instanceof EtcdUnavailableError) return new CniError(ErrorCode.TryAgainLater, e.message, "", { cause: e });
  if (e instanceof EtcdTlsError || e instanceof EtcdConfigError) {
    return new CniError(ErrorCode.InvalidConfig, e.message, "ipam.etcdConfig", { cause: e });
  }
  if (e instanceof EtcdRequestError) {
    // Out of space (NOSPACE) heals once an operator frees space: the runtime's retry will then succeed.
    const code = e.code === RESOURCE_EXHAUSTED ? ErrorCode.TryAgainLater : ErrorCode.IOFailure;
    return new CniError(code, e.message, "", { cause: e });
  }
  if (e instanceof KubeUnavailableError) return new CniError(ErrorCode.TryAgainLater, e.message, e.server, { cause: e });
  if (e instanceof KubeConfigError) return new CniError(ErrorCode.InvalidConfig, e.message, "ipam.kubeConfig", { cause: e });
  if (e instanceof PoolExhaustedError) return new CniError(ErrorCode.PoolExhausted, e.message, e.network, { cause: e });
  if (e instanceof AddressInUseError) return new CniError(ErrorCode.AddressInUse, e.message, e.ip, { cause: e });
  if (e instanceof AddressReservedError) return new CniError(ErrorCode.AddressReserved, e.message, e.ip, { cause: e });
  if (e instanceof AddressUnavailableError) return new CniError(ErrorCode.AddressUnavailable, e.message, e.ip, { cause: e });
  const err = e instanceof Error ? e : new Error(String(e));
  return new CniError(ErrorCode.Internal, `Internal error: ${err.message}`, err.stack ?? "", { cause: e });
}
