import { describe, expect, test } from "bun:test";
import { type Command, isCommand, readCniEnv, validateContainerID, validateInterfaceName } from "../../src/cni/env.ts";
import { thrownCniError } from "../support/cni_error.ts";

const INVALID_CHARACTERS = 'invalid characters in containerID: letters, digits, "_", "." and "-", starting with a letter or digit';

const FULL = {
  CNI_CONTAINERID: "abc123",
  CNI_NETNS: "/var/run/netns/x",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
};

describe("readCniEnv: missing variables, named all at once", () => {
  // [command, env besides CNI_COMMAND, missing list or undefined when accepted]
  const cases: [Command, Record<string, string>, string | undefined][] = [
    ["ADD", {}, "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"],
    ["ADD", { CNI_NETNS: "/ns" }, "CNI_CONTAINERID,CNI_IFNAME,CNI_PATH"],
    ["ADD", { ...FULL, CNI_PATH: "" }, "CNI_PATH"], // empty counts as missing
    ["ADD", FULL, undefined],
    ["CHECK", {}, "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"],
    ["CHECK", FULL, undefined],
    ["DEL", {}, "CNI_CONTAINERID,CNI_IFNAME,CNI_PATH"],
    ["DEL", { ...FULL, CNI_NETNS: "" }, undefined], // the netns may be gone already
    ["DEL", { CNI_CONTAINERID: "abc", CNI_PATH: "/opt/cni/bin" }, "CNI_IFNAME"],
    ["VERSION", {}, undefined],
    ["GC", {}, "CNI_PATH"],
    ["GC", { CNI_PATH: "/opt/cni/bin" }, undefined],
    ["STATUS", {}, "CNI_PATH"],
    ["STATUS", { CNI_PATH: "/opt/cni/bin" }, undefined],
  ];
  test.each(cases)("%s with %p", (command, env, missing) => {
    const err = thrownCniError(() => readCniEnv({ CNI_COMMAND: command, ...env }));
    if (missing === undefined) {
      expect(err).toBeUndefined();
      return;
    }
    expect(err?.code).toBe(4);
    expect(err?.message).toBe(`required env variables [${missing}] missing`);
  });

  test("the environment read back", () => {
    expect(readCniEnv({ CNI_COMMAND: "ADD", ...FULL, CNI_ARGS: "IgnoreUnknown=1", OTHER: "x" })).toEqual({
      command: "ADD",
      containerID: "abc123",
      netns: "/var/run/netns/x",
      ifName: "eth0",
      args: "IgnoreUnknown=1",
      path: "/opt/cni/bin",
    });
    expect(readCniEnv({ CNI_COMMAND: "VERSION" })).toEqual({
      command: "VERSION", containerID: "", netns: "", ifName: "", args: "", path: "",
    });
  });

  const unknown: [string, string | undefined][] = [
    ["unset", undefined],
    ["lower case", "add"],
    ["unknown verb", "UPDATE"],
  ];
  test.each(unknown)("unknown CNI_COMMAND: %s", (_name, command) => {
    const err = thrownCniError(() => readCniEnv({ ...FULL, CNI_COMMAND: command }));
    expect(err?.code).toBe(4);
    expect(err?.message).toBe(`unknown CNI_COMMAND: ${command}`);
    expect(err?.details).toBe("expected one of ADD, DEL, CHECK, VERSION, STATUS, GC");
  });

  test.each(["ADD", "DEL", "CHECK"] as const)("%s validates the container ID and interface name", (command) => {
    expect(thrownCniError(() => readCniEnv({ CNI_COMMAND: command, ...FULL, CNI_CONTAINERID: "a/b" }))?.message)
      .toBe(`Invalid CNI_CONTAINERID: ${INVALID_CHARACTERS}`);
    expect(thrownCniError(() => readCniEnv({ CNI_COMMAND: command, ...FULL, CNI_IFNAME: "eth 0" }))?.message)
      .toBe("Invalid CNI_IFNAME: interface name contains / or : or whitespace characters");
  });

  test("GC and STATUS ignore a bad container ID and interface name", () => {
    for (const command of ["GC", "STATUS", "VERSION"]) {
      expect(thrownCniError(() => readCniEnv({ CNI_COMMAND: command, ...FULL, CNI_CONTAINERID: "a/b", CNI_IFNAME: "." })))
        .toBeUndefined();
    }
  });

  test("isCommand", () => {
    expect(["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"].every(isCommand)).toBe(true);
    expect([undefined, "", "add", "GET"].some(isCommand)).toBe(false);
  });
});

describe("validateContainerID", () => {
  const valid = ["a", "0", "abc123", "A-b_c.d", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"];
  test.each(valid)("accepts %p", (id) => {
    expect(thrownCniError(() => validateContainerID(id))).toBeUndefined();
  });

  const invalid: [string, string][] = [
    ["", "missing containerID"],
    ["-abc", INVALID_CHARACTERS],
    [".abc", INVALID_CHARACTERS],
    ["_abc", INVALID_CHARACTERS],
    ["a/b", INVALID_CHARACTERS],
    ["a b", INVALID_CHARACTERS],
    ["a:b", INVALID_CHARACTERS],
    ["abc\n", INVALID_CHARACTERS],
    ["ünïcode", INVALID_CHARACTERS],
    ["f".repeat(129), "containerID is too long: 129 bytes, at most 128"],
  ];
  test.each(invalid)("refuses %p", (id, message) => {
    const err = thrownCniError(() => validateContainerID(id));
    expect(err?.code).toBe(4);
    expect(err?.message).toBe(`Invalid CNI_CONTAINERID: ${message}`);
    expect(err?.details).toBe(id.length > 128 ? `${id.slice(0, 64)}... (${id.length} characters)` : id);
  });

  test("accepts 128 bytes, the most the stores take", () => {
    expect(thrownCniError(() => validateContainerID("f".repeat(128)))).toBeUndefined();
  });

  test("a container ID of thousands of characters is code 4 naming the limit, its start in details", () => {
    const err = thrownCniError(() => validateContainerID("a".repeat(5000)));
    expect(err?.message).toBe("Invalid CNI_CONTAINERID: containerID is too long: 5000 bytes, at most 128");
    expect(err?.details).toBe(`${"a".repeat(64)}... (5000 characters)`);
  });
});

describe("validateInterfaceName", () => {
  const valid = ["eth0", "net1", "a", "123456789012345", "eth0.100", "veth-x_y", "...", ".a", "ééééééé1"]; // 15 bytes
  test.each(valid)("accepts %p", (name) => {
    expect(thrownCniError(() => validateInterfaceName(name))).toBeUndefined();
  });

  const invalid: [string, string][] = [
    ["", "interface name is empty"],
    ["1234567890123456", "interface name is too long: at most 15 bytes"],
    ["éééééééé", "interface name is too long: at most 15 bytes"], // 8 characters, 16 bytes
    [".", "interface name is . or .."],
    ["..", "interface name is . or .."],
    ["eth/0", "interface name contains / or : or whitespace characters"],
    ["eth:0", "interface name contains / or : or whitespace characters"],
    ["eth 0", "interface name contains / or : or whitespace characters"],
    ["eth\t0", "interface name contains / or : or whitespace characters"],
    ["eth0\n", "interface name contains / or : or whitespace characters"],
    ["eth\u00a0", "interface name contains / or : or whitespace characters"],
    ["e\x01", "interface name contains control characters"], // libcni lets these through
    ["e\x1b[0m", "interface name contains control characters"],
    ["e\x7f", "interface name contains control characters"],
    ["e\u0085", "interface name contains control characters"],
  ];
  test.each(invalid)("refuses %p", (name, message) => {
    const err = thrownCniError(() => validateInterfaceName(name));
    expect(err?.code).toBe(4);
    expect(err?.message).toBe(`Invalid CNI_IFNAME: ${message}`);
    expect(err?.details).toBe(name);
  });
});
