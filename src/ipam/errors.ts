// Conditions of the allocation domain that the runtime or an operator must act on.
// Each names the address, the network and, where known, who holds it.
import type { Allocation } from "../store/store.ts";

export function describeHolder(a: Allocation): string {
  // A runtime outside Kubernetes (podman) names the container only: no namespace to print.
  const pod = a.podName ? `pod "${a.podNamespace ? `${a.podNamespace}/` : ""}${a.podName}"` : "no pod recorded";
  return `${pod}, container "${a.containerID}" interface "${a.ifName}" on node "${a.node}" (${a.kind}, since ${a.allocatedAt})`;
}

export class PoolExhaustedError extends Error {
  override name = "PoolExhaustedError";
  constructor(readonly network: string, readonly ranges: string) {
    super(`No free address in network "${network}" range set ${ranges}: release unused addresses (kube-ipam ls) or add a range`);
  }
}

export class AddressInUseError extends Error {
  override name = "AddressInUseError";
  constructor(readonly ip: string, readonly network: string, readonly holder?: Allocation) {
    super(`Address "${ip}" in network "${network}" is held by ${holder ? describeHolder(holder) : "another container"}`);
  }
}

export class AddressUnavailableError extends Error {
  override name = "AddressUnavailableError";
  constructor(readonly ip: string, readonly network: string, reason: string) {
    super(`Cannot allocate address "${ip}" in network "${network}": ${reason}`);
  }
}

export class AddressReservedError extends Error {
  override name = "AddressReservedError";
  constructor(readonly ip: string, readonly reservation: string) {
    super(`Address "${ip}" is reserved by "${reservation}": choose another address or run "kube-ipam unreserve ${reservation}"`);
  }
}
