import { describe, expect, test } from "bun:test";
import { CniError, errorToJSON } from "../../src/cni/errors.ts";
import {
  checkConfigVersion,
  compareVersions,
  type CniVersion,
  isSupportedVersion,
  requireVersionFor,
  SUPPORTED_VERSIONS,
} from "../../src/cni/version.ts";
import { thrownCniError } from "../support/cni_error.ts";

describe("checkConfigVersion", () => {
  const valid: [unknown, CniVersion][] = [
    [undefined, "0.1.0"], // libcni reads a missing cniVersion as 0.1.0
    ["", "0.1.0"],
    ...SUPPORTED_VERSIONS.map((v) => [v, v] as [string, CniVersion]),
  ];
  test.each(valid)("%p -> %p", (v, expected) => {
    expect(checkConfigVersion(v)).toBe(expected);
  });

  const supported = '["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]';
  const invalid: [unknown, string][] = [
    ["0.5.0", `config is "0.5.0", plugin supports ${supported}`],
    ["1.2.0", `config is "1.2.0", plugin supports ${supported}`],
    ["1.0", `config is "1.0", plugin supports ${supported}`],
    ["v1.0.0", `config is "v1.0.0", plugin supports ${supported}`],
    [1, `config is 1, plugin supports ${supported}`],
    [null, `config is null, plugin supports ${supported}`],
  ];
  test.each(invalid)("refuses %p with code 1", (v, details) => {
    const err = thrownCniError(() => checkConfigVersion(v));
    expect(err?.code).toBe(1);
    expect(err?.message).toBe("incompatible CNI versions");
    expect(err?.details).toBe(details);
  });

  test("isSupportedVersion", () => {
    expect(SUPPORTED_VERSIONS.every(isSupportedVersion)).toBe(true);
    expect([undefined, "", "0.5.0", 1].some(isSupportedVersion)).toBe(false);
  });
});

describe("requireVersionFor", () => {
  // [command, version, allowed]
  const cases: [string, CniVersion, boolean][] = [
    ["ADD", "0.1.0", true],
    ["DEL", "0.1.0", true],
    ["VERSION", "0.1.0", true],
    ["CHECK", "0.1.0", false],
    ["CHECK", "0.3.1", false],
    ["CHECK", "0.4.0", true],
    ["CHECK", "1.0.0", true],
    ["GC", "0.4.0", false],
    ["GC", "1.0.0", false],
    ["GC", "1.1.0", true],
    ["STATUS", "1.0.0", false],
    ["STATUS", "1.1.0", true],
  ];
  test.each(cases)("%s with cniVersion %s: allowed %p", (command, version, allowed) => {
    const err = thrownCniError(() => requireVersionFor(command, version));
    if (allowed) {
      expect(err).toBeUndefined();
      return;
    }
    const minimum = command === "CHECK" ? "0.4.0" : "1.1.0";
    expect(err?.code).toBe(1);
    expect(err?.message).toBe(`config version does not allow ${command}`);
    expect(err?.details).toBe(`${command} needs cniVersion ${minimum} or later; the config says ${version}`);
  });
});

describe("compareVersions", () => {
  const cases: [string, string, number][] = [
    ["0.4.0", "0.4.0", 0],
    ["0.3.1", "0.4.0", -1],
    ["1.0.0", "0.4.0", 1],
    ["0.10.0", "0.4.0", 1], // numeric, not lexical
    ["1.1.0", "1.0.9", 1],
    ["1.0", "1.0.0", 0],
  ];
  test.each(cases)("%s vs %s: sign %d", (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
    expect(Math.sign(compareVersions(b, a))).toBe(-sign || 0);
  });
});

describe("errorToJSON", () => {
  test("details only when set", () => {
    expect(errorToJSON(new CniError(7, "bad config", "ipam.subnet"), "1.0.0"))
      .toEqual({ cniVersion: "1.0.0", code: 7, msg: "bad config", details: "ipam.subnet" });
    expect(errorToJSON(new CniError(11, "try again"), "0.4.0")).toEqual({ cniVersion: "0.4.0", code: 11, msg: "try again" });
  });
});
