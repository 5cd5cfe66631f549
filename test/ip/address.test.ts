import { describe, expect, test } from "bun:test";
import {
  compareIP,
  familyName,
  formatIP,
  type IP,
  ipAdd,
  ipEquals,
  ipFromHex,
  ipToHex,
  parseIP,
  tryParseIP,
} from "../../src/ip/address.ts";

const v4 = (value: bigint): IP => ({ family: 4, value });
const v6 = (value: bigint): IP => ({ family: 6, value });

describe("tryParseIP / formatIP, IPv4", () => {
  const valid: [string, bigint][] = [
    ["0.0.0.0", 0n],
    ["10.0.0.1", 0x0a000001n],
    ["192.168.1.255", 0xc0a801ffn],
    ["255.255.255.255", 0xffffffffn],
    ["1.2.3.4", 0x01020304n],
    ["100.64.0.0", 0x64400000n],
  ];
  test.each(valid)("%s", (text, value) => {
    expect(tryParseIP(text)).toEqual(v4(value));
    expect(formatIP(v4(value))).toBe(text);
  });

  const invalid: [string, string][] = [
    ["empty", ""],
    ["three parts", "10.0.0"],
    ["five parts", "10.0.0.1.2"],
    ["octet above 255", "10.0.0.256"],
    ["leading zero", "10.0.0.01"],
    ["leading zero, octal-looking", "010.0.0.1"],
    ["double zero", "10.00.0.1"],
    ["empty part", "10..0.1"],
    ["trailing dot", "10.0.0.1."],
    ["sign", "10.0.0.+1"],
    ["negative", "10.0.0.-1"],
    ["four digits", "10.0.0.0001"],
    ["hex octet", "0x0a.0.0.1"],
    ["leading space", " 10.0.0.1"],
    ["trailing space", "10.0.0.1 "],
    ["with prefix length", "10.0.0.1/24"],
    ["with port", "10.0.0.1:80"],
    ["a word", "localhost"],
    ["non-ASCII digits", "١٠.0.0.1"],
  ];
  test.each(invalid)("refuses %s", (_name, text) => {
    expect(tryParseIP(text)).toBeUndefined();
  });
});

describe("tryParseIP, IPv6", () => {
  const valid: [string, string, bigint][] = [
    ["::", "::", 0n],
    ["::1", "::1", 1n],
    ["1::", "1::", 1n << 112n],
    ["full form", "2001:0db8:0000:0000:0000:0000:0000:0001", 0x20010db8000000000000000000000001n],
    ["compressed", "2001:db8::1", 0x20010db8000000000000000000000001n],
    ["upper case", "2001:DB8::ABCD", 0x20010db800000000000000000000abcdn],
    ["no compression", "1:2:3:4:5:6:7:8", 0x00010002000300040005000600070008n],
    ["compression of one group", "1:2:3:4:5:6:7::", 0x00010002000300040005000600070000n],
    ["compression at the start of seven", "::2:3:4:5:6:7:8", 0x00000002000300040005000600070008n],
    ["all ones", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", (1n << 128n) - 1n],
    ["IPv4-mapped", "::ffff:1.2.3.4", 0xffff01020304n],
    ["IPv4-mapped, full form", "0:0:0:0:0:ffff:10.0.0.1", 0xffff0a000001n],
    ["IPv4-compatible", "::10.0.0.1", 0x0a000001n],
    ["embedded IPv4 after six groups", "64:ff9b:1:2:3:4:192.0.2.33", 0x0064ff9b0001000200030004c0000221n],
    ["NAT64", "64:ff9b::192.0.2.33", 0x0064ff9b0000000000000000c0000221n],
  ];
  test.each(valid)("%s", (_name, text, value) => {
    expect(tryParseIP(text)).toEqual(v6(value));
  });

  const invalid: [string, string][] = [
    ["single colon", ":"],
    ["three colons", ":::"],
    ["two compressions", "1::2::3"],
    ["leading single colon", ":1:2:3:4:5:6:7"],
    ["trailing single colon", "1:2:3:4:5:6:7:"],
    ["seven groups", "1:2:3:4:5:6:7"],
    ["nine groups", "1:2:3:4:5:6:7:8:9"],
    ["eight groups and a compression", "1:2:3:4::5:6:7:8"],
    ["five hex digits", "12345::"],
    ["non-hex digit", "fe80::g"],
    ["zone", "fe80::1%eth0"],
    ["brackets", "[::1]"],
    ["prefix length", "fd00::/64"],
    ["space", "fd00:: 1"],
    ["IPv4 tail with leading zero", "::ffff:1.2.3.04"],
    ["IPv4 tail too short", "::ffff:1.2.3"],
    ["IPv4 tail octet above 255", "::ffff:1.2.3.256"],
    ["IPv4 not at the end", "::1.2.3.4:1"],
    ["IPv4 first", "1.2.3.4::"],
    ["IPv4 tail after seven groups", "1:2:3:4:5:6:7:1.2.3.4"],
  ];
  test.each(invalid)("refuses %s", (_name, text) => {
    expect(tryParseIP(text)).toBeUndefined();
  });

  test("refuses a non-string", () => {
    expect(tryParseIP(42 as unknown as string)).toBeUndefined();
    expect(tryParseIP(undefined as unknown as string)).toBeUndefined();
  });
});

describe("formatIP, IPv6 (RFC 5952)", () => {
  const cases: [string, string, string][] = [
    ["all zeros", "0:0:0:0:0:0:0:0", "::"],
    ["loopback", "0:0:0:0:0:0:0:1", "::1"],
    ["trailing zeros", "1:0:0:0:0:0:0:0", "1::"],
    ["leading zeros of groups dropped", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["lower case", "2001:DB8:0:0:0:0:0:ABCD", "2001:db8::abcd"],
    ["a single zero group is not compressed", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["the longest run is compressed", "2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["the first of equal runs is compressed", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["run in the middle", "fd00:0:0:0:0:0:0:a", "fd00::a"],
    ["no zero group", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["run of two at the end", "1:2:3:4:5:6:0:0", "1:2:3:4:5:6::"],
    ["run of two at the start", "0:0:3:4:5:6:7:8", "::3:4:5:6:7:8"],
    ["/64 last address", "fd00:0:0:0:ffff:ffff:ffff:ffff", "fd00::ffff:ffff:ffff:ffff"],
    ["IPv4-mapped keeps its dotted tail (RFC 5952 section 5)", "0:0:0:0:0:ffff:a00:1", "::ffff:10.0.0.1"],
  ];
  test.each(cases)("%s", (_name, text, expected) => {
    expect(formatIP(parseIP(text))).toBe(expected);
  });

  // The embedded IPv4 tail survives a round trip through the numeric form.
  const roundTrip = ["::ffff:1.2.3.4", "64:ff9b::192.0.2.33", "::10.0.0.1"];
  test.each(roundTrip)("%s round-trips", (text) => {
    const ip = parseIP(text);
    expect(parseIP(formatIP(ip))).toEqual(ip);
  });
});

describe("parseIP", () => {
  test.each(["10.0.0.1", "fd00::1"])("returns the address: %s", (text) => {
    expect(parseIP(text)).toEqual(tryParseIP(text)!);
  });

  const invalid = ["", "10.0.0.01", "10.0.0.1/24", "1::2::3", "not an address"];
  test.each(invalid)("throws TypeError for %p", (text) => {
    expect(() => parseIP(text)).toThrow(TypeError);
    expect(() => parseIP(text)).toThrow(new TypeError(`Cannot parse IP address "${text}"`));
  });
});

describe("ipToHex / ipFromHex", () => {
  const cases: [string, string][] = [
    ["0.0.0.0", "00000000"],
    ["10.0.0.1", "0a000001"],
    ["255.255.255.255", "ffffffff"],
    ["::", "00000000000000000000000000000000"],
    ["::1", "00000000000000000000000000000001"],
    ["fd00::a:1", "fd0000000000000000000000000a0001"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffffffffffffffffffffffffffffffff"],
  ];
  test.each(cases)("%s <-> %s", (text, hex) => {
    const ip = parseIP(text);
    expect(ipToHex(ip)).toBe(hex);
    expect(ipFromHex(hex)).toEqual(ip);
  });

  test("fixed width: 8 digits for IPv4, 32 for IPv6", () => {
    for (const text of ["0.0.0.1", "1.0.0.0", "10.20.30.40"]) expect(ipToHex(parseIP(text))).toHaveLength(8);
    for (const text of ["::1", "1::", "fd00::1"]) expect(ipToHex(parseIP(text))).toHaveLength(32);
  });

  test("sorting the hex sorts the addresses", () => {
    const ordered = ["0.0.0.0", "0.0.0.9", "0.0.0.10", "9.0.0.0", "10.0.0.0", "10.0.0.255", "10.0.1.0", "192.168.0.1", "255.255.255.255"];
    const shuffled = [...ordered].reverse();
    const byHex = shuffled.map((t) => ipToHex(parseIP(t))).sort();
    expect(byHex.map((h) => formatIP(ipFromHex(h)!))).toEqual(ordered);

    const ordered6 = ["::", "::9", "::a", "::10", "::1:0", "fd00::", "fd00::ffff", "fd00:0:0:1::", "ffff::"];
    const byHex6 = [...ordered6].reverse().map((t) => ipToHex(parseIP(t))).sort();
    expect(byHex6.map((h) => formatIP(ipFromHex(h)!))).toEqual(ordered6);
  });

  const invalid: [string, string][] = [
    ["empty", ""],
    ["7 digits", "0a00000"],
    ["9 digits", "0a0000001"],
    ["16 digits", "0a0000010a000001"],
    ["31 digits", "0".repeat(31)],
    ["33 digits", "0".repeat(33)],
    ["upper case", "0A000001"],
    ["non-hex", "0a00000g"],
    ["0x prefix", "0x0a0001"],
  ];
  test.each(invalid)("ipFromHex refuses %s", (_name, hex) => {
    expect(ipFromHex(hex)).toBeUndefined();
  });
});

describe("comparison and arithmetic", () => {
  const cases: [string, string, number][] = [
    ["10.0.0.1", "10.0.0.1", 0],
    ["10.0.0.1", "10.0.0.2", -1],
    ["10.0.1.0", "10.0.0.255", 1],
    ["255.255.255.255", "::", -1], // IPv4 sorts before IPv6
    ["::", "0.0.0.0", 1],
    ["fd00::1", "fd00::2", -1],
    ["fd00::1:0", "fd00::ffff", 1],
  ];
  test.each(cases)("compareIP(%s, %s) has the sign of %d", (a, b, sign) => {
    expect(Math.sign(compareIP(parseIP(a), parseIP(b)))).toBe(sign);
    expect(ipEquals(parseIP(a), parseIP(b))).toBe(sign === 0);
  });

  test("ipEquals tells the families apart", () => {
    expect(ipEquals(v4(1n), v6(1n))).toBe(false);
  });

  const adds: [string, bigint, string][] = [
    ["10.0.0.255", 1n, "10.0.1.0"],
    ["10.0.1.0", -1n, "10.0.0.255"],
    ["fd00::ffff", 1n, "fd00::1:0"],
    ["fd00::", (1n << 64n) - 1n, "fd00::ffff:ffff:ffff:ffff"],
  ];
  test.each(adds)("%s + %p = %s", (a, n, expected) => {
    expect(formatIP(ipAdd(parseIP(a), n))).toBe(expected);
  });

  test("familyName", () => {
    expect([familyName(4), familyName(6)]).toEqual(["IPv4", "IPv6"]);
  });
});
