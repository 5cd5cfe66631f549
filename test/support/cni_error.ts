import { expect } from "bun:test";
import { CniError } from "../../src/cni/errors.ts";

/** The CniError `fn` throws (failing the test if it throws anything else), or undefined. */
export function thrownCniError(fn: () => unknown): CniError | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  return undefined;
}
