// CNI error codes and the error every layer throws when the runtime must be told something.
// The mapping from other errors to codes lives in one place: ../ipam/error_map.ts.

/** Codes of the CNI specification, and kube-ipam's own from 100 on. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50, // STATUS: cannot serve ADD
  PoolExhausted: 100,
  AddressInUse: 101,
  AddressReserved: 102,
  AddressUnavailable: 103, // requested address outside every range, or never allocatable
  Internal: 999,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CniError extends Error {
  override name = "CniError";
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface CniErrorJSON {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export function errorToJSON(err: CniError, cniVersion: string): CniErrorJSON {
  const out: CniErrorJSON = { cniVersion, code: err.code, msg: err.message };
  if (err.details) out.details = err.details;
  return out;
}
