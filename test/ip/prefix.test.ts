import { describe, expect, test } from "bun:test";
import { type Family, formatIP, parseIP } from "../../src/ip/address.ts";
import {
  formatPrefix,
  lastAddress,
  parseCIDR,
  prefixContains,
  prefixSize,
  tryParseCIDR,
  tryParseNetmask,
} from "../../src/ip/prefix.ts";

describe("parseCIDR", () => {
  // [input, address as written, network/length, last address, size]
  const valid: [string, string, string, string, bigint][] = [
    ["10.0.0.0/24", "10.0.0.0", "10.0.0.0/24", "10.0.0.255", 256n],
    ["10.0.0.5/24", "10.0.0.5", "10.0.0.0/24", "10.0.0.255", 256n],
    ["10.1.2.3/16", "10.1.2.3", "10.1.0.0/16", "10.1.255.255", 65536n],
    ["10.0.0.7/32", "10.0.0.7", "10.0.0.7/32", "10.0.0.7", 1n],
    ["10.0.0.7/31", "10.0.0.7", "10.0.0.6/31", "10.0.0.7", 2n],
    ["192.168.7.9/0", "192.168.7.9", "0.0.0.0/0", "255.255.255.255", 1n << 32n],
    ["fd00::/64", "fd00::", "fd00::/64", "fd00::ffff:ffff:ffff:ffff", 1n << 64n],
    ["fd00::1:2/112", "fd00::1:2", "fd00::1:0/112", "fd00::1:ffff", 65536n],
    ["2001:db8::1/128", "2001:db8::1", "2001:db8::1/128", "2001:db8::1", 1n],
    ["2001:db8::1/0", "2001:db8::1", "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1n << 128n],
    ["::ffff:10.0.0.1/120", "::ffff:10.0.0.1", "::ffff:10.0.0.0/120", "::ffff:10.0.0.255", 256n],
  ];
  test.each(valid)("%s", (text, ip, prefix, last, size) => {
    const c = parseCIDR(text);
    expect(formatIP(c.ip)).toBe(ip);
    expect(formatPrefix(c.prefix)).toBe(prefix);
    expect(formatIP(lastAddress(c.prefix))).toBe(last);
    expect(prefixSize(c.prefix)).toBe(size);
    expect(tryParseCIDR(text)).toEqual(c);
  });

  const invalid: [string, string][] = [
    ["no length", "10.0.0.0"],
    ["empty length", "10.0.0.0/"],
    ["IPv4 length above 32", "10.0.0.0/33"],
    ["IPv6 length above 128", "fd00::/129"],
    ["four-digit length", "fd00::/0064"],
    ["negative length", "10.0.0.0/-1"],
    ["netmask as length", "10.0.0.0/255.255.255.0"],
    ["two slashes", "10.0.0.0/24/24"],
    ["bad address", "10.0.0.256/24"],
    ["leading zero in address", "10.0.0.01/24"],
    ["spaces", "10.0.0.0 /24"],
    ["empty", ""],
    ["only a slash", "/"],
  ];
  test.each(invalid)("refuses %s", (_name, text) => {
    expect(tryParseCIDR(text)).toBeUndefined();
    expect(() => parseCIDR(text)).toThrow(new TypeError(`Cannot parse CIDR "${text}"`));
  });

  test("tryParseCIDR refuses a non-string", () => {
    expect(tryParseCIDR(24 as unknown as string)).toBeUndefined();
  });
});

describe("prefixContains", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/24", "10.0.0.0", true],
    ["10.0.0.0/24", "10.0.0.255", true],
    ["10.0.0.0/24", "10.0.1.0", false],
    ["10.0.0.0/24", "9.255.255.255", false],
    ["10.0.0.0/8", "10.255.0.1", true],
    ["10.0.0.5/32", "10.0.0.5", true],
    ["10.0.0.5/32", "10.0.0.6", false],
    ["0.0.0.0/0", "255.255.255.255", true],
    ["0.0.0.0/0", "::", false], // other family
    ["::/0", "0.0.0.0", false],
    ["::/0", "fd00::1", true],
    ["fd00::/64", "fd00::ffff:ffff:ffff:ffff", true],
    ["fd00::/64", "fd00:0:0:1::", false],
    ["::/96", "10.0.0.1", false], // same value, other family
  ];
  test.each(cases)("%s contains %s: %p", (cidr, ip, expected) => {
    expect(prefixContains(parseCIDR(cidr).prefix, parseIP(ip))).toBe(expected);
  });
});

describe("tryParseNetmask", () => {
  const cases: [string, Family, number | undefined][] = [
    ["24", 4, 24],
    ["0", 4, 0],
    ["32", 4, 32],
    ["33", 4, undefined],
    [" 16 ", 4, 16],
    ["255.255.255.0", 4, 24],
    ["255.255.0.0", 4, 16],
    ["255.255.255.255", 4, 32],
    ["0.0.0.0", 4, 0],
    ["255.255.255.252", 4, 30],
    ["255.128.0.0", 4, 9],
    ["255.0.255.0", 4, undefined], // not contiguous
    ["0.255.255.255", 4, undefined],
    ["255.255.255.1", 4, undefined],
    ["ffff:ffff::", 4, undefined], // wrong family
    ["255.255.0.0", 6, undefined],
    ["64", 6, 64],
    ["128", 6, 128],
    ["129", 6, undefined],
    ["ffff:ffff:ffff:ffff::", 6, 64],
    ["ffff:ffff::", 6, 32],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, 128],
    ["::", 6, 0],
    ["ffff:fff0::", 6, 28],
    ["ffff:0:ffff::", 6, undefined],
    ["::ffff", 6, undefined],
    ["", 4, undefined],
    ["abc", 4, undefined],
    ["255.255.255.0/24", 4, undefined],
  ];
  test.each(cases)("%p as IPv%d: %p", (mask, family, expected) => {
    expect(tryParseNetmask(mask, family)).toBe(expected);
  });
});
