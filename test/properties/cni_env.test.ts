// Properties of what the runtime passes besides stdin: CNI_ARGS, CNI_CONTAINERID, CNI_IFNAME. Each is
// accepted or refused with code 4 (CNI_ARGS' IP= values with code 7, naming them, when the config loads);
// what is accepted fits where kube-ipam writes it.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseCniArgs } from "../../src/cni/args.ts";
import { MAX_CONTAINER_ID_BYTES, readCniEnv, validateContainerID, validateInterfaceName } from "../../src/cni/env.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { loadIpamConfig } from "../../src/config/ipam_config.ts";
import { toCniError } from "../../src/ipam/error_map.ts";
import { anyText, cniArgs, loadsOrRefuses, nearContainerID, nearIfName } from "../support/arbitraries.ts";
import { thrownCniError } from "../support/cni_error.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

describe("CNI_ARGS properties", () => {
  test("any CNI_ARGS parses or is refused with code 4", () => {
    fc.assert(fc.property(cniArgs, (raw) => {
      const args = loadsOrRefuses(() => parseCniArgs(raw), [4]);
      if (!args) return;
      expect(args.ips.every((ip) => ip !== "" && ip === ip.trim() && !ip.includes(","))).toBe(true);
      for (const v of [args.podName, args.podNamespace, args.podUID]) expect(v === undefined || v.length > 0).toBe(true);
    }), { numRuns: 1000 });
  });

  test("CNI_ARGS IP= values load with the config or are refused with code 7 naming CNI_ARGS", () => {
    const conf = { cniVersion: "1.0.0", name: "n", ipam: { subnet: "10.0.0.0/24" } };
    fc.assert(fc.property(cniArgs, (raw) => {
      const args = loadsOrRefuses(() => parseCniArgs(raw), [4]);
      if (!args) return;
      try {
        loadIpamConfig(conf, { hostname: () => "h", argsIPs: args.ips });
      } catch (e) {
        // The config is valid: only an IP= value can be wrong.
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).field).toStartWith("CNI_ARGS IP[");
        expect(toCniError(e).code).toBe(7);
      }
    }), { numRuns: 500 });
  });
});

describe("CNI_CONTAINERID and CNI_IFNAME properties", () => {
  test("an interface name is accepted only if the kernel and every store can use it, else code 4 naming CNI_IFNAME", () => {
    fc.assert(fc.property(nearIfName, (name) => {
      const err = thrownCniError(() => validateInterfaceName(name));
      if (err) {
        expect(err.code).toBe(4);
        expect(err.message).toStartWith("Invalid CNI_IFNAME: ");
        return;
      }
      expect(bytes(name)).toBeLessThanOrEqual(15);
      expect(name).not.toMatch(/[/:\s\u0000-\u001f\u007f-\u009f]/);
      expect([".", ".."]).not.toContain(name);
    }), { numRuns: 1000 });
  });

  test("a container ID is accepted only if the spec allows it and it fits a file name, else code 4 naming CNI_CONTAINERID", () => {
    fc.assert(fc.property(nearContainerID, (id) => {
      const err = thrownCniError(() => validateContainerID(id));
      if (err) {
        expect(err.code).toBe(4);
        expect(err.message).toStartWith("Invalid CNI_CONTAINERID: ");
        expect(err.details.length).toBeLessThan(200);
        return;
      }
      expect(id).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
      // The embedded store's owner entry "<containerID>:<ifName>:<32 hex digits>" is one file name (NAME_MAX 255).
      expect(bytes(`${id}:${"i".repeat(15)}:${"0".repeat(32)}`)).toBeLessThanOrEqual(255);
    }), { numRuns: 1000 });
  });

  test("readCniEnv accepts or refuses any environment with code 4", () => {
    const env = fc.record({
      CNI_COMMAND: fc.oneof(fc.constantFrom("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "add", ""), anyText),
      CNI_CONTAINERID: nearContainerID,
      CNI_NETNS: fc.constantFrom("/var/run/netns/x", ""),
      CNI_IFNAME: nearIfName,
      CNI_PATH: fc.constantFrom("/opt/cni/bin", ""),
      CNI_ARGS: cniArgs,
    }, { requiredKeys: [] });
    fc.assert(fc.property(env, (e) => {
      loadsOrRefuses(() => readCniEnv(e), [4]);
    }), { numRuns: 1000 });
  });
});

describe("limits", () => {
  test("the longest container ID accepted, and one byte more", () => {
    expect(thrownCniError(() => validateContainerID("f".repeat(MAX_CONTAINER_ID_BYTES)))).toBeUndefined();
    const err = thrownCniError(() => validateContainerID("f".repeat(MAX_CONTAINER_ID_BYTES + 1)));
    expect(err?.code).toBe(4);
    expect(err?.message).toBe("Invalid CNI_CONTAINERID: containerID is too long: 129 bytes, at most 128");
  });

  test("a control character in an interface name is code 4 (it used to end up in a file name)", () => {
    const err = thrownCniError(() => validateInterfaceName("e\x01"));
    expect(err?.code).toBe(4);
    expect(err?.message).toBe("Invalid CNI_IFNAME: interface name contains control characters");
    expect(err?.details).toBe("e\x01");
  });
});
