import { describe, expect, test } from "bun:test";
import { formatIP, parseIP } from "../../src/ip/address.ts";
import { formatPrefix } from "../../src/ip/prefix.ts";
import {
  canonicalizeRange,
  formatRange,
  InvalidRangeError,
  isInfrastructure,
  type RawRange,
  rangeContains,
} from "../../src/ip/range.ts";

function text(raw: RawRange): { subnet: string; rangeStart: string; rangeEnd: string; gateway: string } {
  const r = canonicalizeRange(raw);
  return {
    subnet: formatPrefix(r.subnet),
    rangeStart: formatIP(r.rangeStart),
    rangeEnd: formatIP(r.rangeEnd),
    gateway: formatIP(r.gateway),
  };
}

describe("canonicalizeRange: host-local's defaults", () => {
  const cases: [string, RawRange, ReturnType<typeof text>][] = [
    ["IPv4 /24: gateway and rangeStart network+1, rangeEnd broadcast-1", { subnet: "10.0.0.0/24" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.1", rangeEnd: "10.0.0.254", gateway: "10.0.0.1" }],
    ["IPv4 /16", { subnet: "10.1.0.0/16" },
      { subnet: "10.1.0.0/16", rangeStart: "10.1.0.1", rangeEnd: "10.1.255.254", gateway: "10.1.0.1" }],
    ["IPv4 /30, the smallest", { subnet: "10.0.0.4/30" },
      { subnet: "10.0.0.4/30", rangeStart: "10.0.0.5", rangeEnd: "10.0.0.6", gateway: "10.0.0.5" }],
    ["IPv6 /64: rangeEnd is the last address", { subnet: "fd00::/64" },
      { subnet: "fd00::/64", rangeStart: "fd00::1", rangeEnd: "fd00::ffff:ffff:ffff:ffff", gateway: "fd00::1" }],
    ["IPv6 /126, the smallest", { subnet: "fd00::/126" },
      { subnet: "fd00::/126", rangeStart: "fd00::1", rangeEnd: "fd00::3", gateway: "fd00::1" }],
    ["explicit values kept", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.100", rangeEnd: "10.0.0.200", gateway: "10.0.0.254" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.100", rangeEnd: "10.0.0.200", gateway: "10.0.0.254" }],
    ["only rangeStart", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.128" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.128", rangeEnd: "10.0.0.254", gateway: "10.0.0.1" }],
    ["only rangeEnd", { subnet: "10.0.0.0/24", rangeEnd: "10.0.0.127" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.1", rangeEnd: "10.0.0.127", gateway: "10.0.0.1" }],
    ["rangeStart = rangeEnd", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.9" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.9", gateway: "10.0.0.1" }],
    ["empty strings and null are absent", { subnet: "10.0.0.0/24", rangeStart: "", rangeEnd: null, gateway: "" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.1", rangeEnd: "10.0.0.254", gateway: "10.0.0.1" }],
    ["IPv6 written long, formatted canonically", { subnet: "FD00:0000::/64", gateway: "fd00::0:FFFF" },
      { subnet: "fd00::/64", rangeStart: "fd00::1", rangeEnd: "fd00::ffff:ffff:ffff:ffff", gateway: "fd00::ffff" }],
  ];
  test.each(cases)("%s", (_name, raw, expected) => {
    expect(text(raw)).toEqual(expected);
  });
});

describe("canonicalizeRange: InvalidRangeError", () => {
  const cases: [string, RawRange, keyof RawRange, string][] = [
    ["subnet missing", {}, "subnet", "subnet is required"],
    ["subnet empty", { subnet: "" }, "subnet", "subnet is required"],
    ["subnet not a CIDR", { subnet: "10.0.0.0" }, "subnet", 'subnet "10.0.0.0" is not a CIDR'],
    ["subnet a number", { subnet: 24 }, "subnet", "subnet 24 is not a CIDR"],
    ["subnet null", { subnet: null }, "subnet", "subnet null is not a CIDR"],
    ["subnet /31", { subnet: "10.0.0.0/31" }, "subnet", 'subnet "10.0.0.0/31" is too small to allocate from (at most /30)'],
    ["subnet /32", { subnet: "10.0.0.1/32" }, "subnet", 'subnet "10.0.0.1/32" is too small to allocate from (at most /30)'],
    ["subnet /127", { subnet: "fd00::/127" }, "subnet", 'subnet "fd00::/127" is too small to allocate from (at most /126)'],
    ["subnet /128", { subnet: "fd00::1/128" }, "subnet", 'subnet "fd00::1/128" is too small to allocate from (at most /126)'],
    ["host bits set", { subnet: "10.0.0.5/24" }, "subnet",
      'subnet "10.0.0.5/24" has host bits set: the network address for /24 is "10.0.0.0"'],
    ["IPv6 host bits set", { subnet: "fd00::1/64" }, "subnet",
      'subnet "fd00::1/64" has host bits set: the network address for /64 is "fd00::"'],
    ["rangeStart not an address", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.x" }, "rangeStart",
      'rangeStart "10.0.0.x" is not an IP address'],
    ["rangeStart a number", { subnet: "10.0.0.0/24", rangeStart: 5 }, "rangeStart", "rangeStart 5 is not an IP address"],
    ["rangeStart outside the subnet", { subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }, "rangeStart",
      'rangeStart "10.0.1.5" is not in subnet "10.0.0.0/24"'],
    ["rangeStart of the other family", { subnet: "10.0.0.0/24", rangeStart: "::a00:5" }, "rangeStart",
      'rangeStart "::a00:5" is not in subnet "10.0.0.0/24"'],
    ["rangeEnd outside the subnet", { subnet: "10.0.0.0/24", rangeEnd: "10.0.1.0" }, "rangeEnd",
      'rangeEnd "10.0.1.0" is not in subnet "10.0.0.0/24"'],
    ["rangeEnd not an address", { subnet: "fd00::/64", rangeEnd: "fd00::/64" }, "rangeEnd",
      'rangeEnd "fd00::/64" is not an IP address'],
    ["gateway outside the subnet", { subnet: "fd00::/64", gateway: "fd00:0:0:1::1" }, "gateway",
      'gateway "fd00:0:0:1::1" is not in subnet "fd00::/64"'],
    ["gateway not an address", { subnet: "10.0.0.0/24", gateway: "router" }, "gateway",
      'gateway "router" is not an IP address'],
    ["reversed range", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.200", rangeEnd: "10.0.0.100" }, "rangeEnd",
      'rangeEnd "10.0.0.100" is before rangeStart "10.0.0.200"'],
    ["rangeStart after the default rangeEnd", { subnet: "10.0.0.0/24", rangeStart: "10.0.0.255" }, "rangeEnd",
      'rangeEnd "10.0.0.254" is before rangeStart "10.0.0.255"'],
  ];
  test.each(cases)("%s", (_name, raw, field, message) => {
    let err: unknown;
    try {
      canonicalizeRange(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRangeError);
    const e = err as InvalidRangeError;
    expect(e.name).toBe("InvalidRangeError");
    expect(e.field).toBe(field);
    expect(e.message).toBe(message);
  });
});

describe("rangeContains / isInfrastructure", () => {
  const v4 = canonicalizeRange({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.0", rangeEnd: "10.0.0.255", gateway: "10.0.0.254" });
  const v6 = canonicalizeRange({ subnet: "fd00::/120" });
  // [range, ip, in range, never handed out]
  const cases: [string, typeof v4, string, boolean, boolean][] = [
    ["v4", v4, "10.0.0.0", true, true], // network
    ["v4", v4, "10.0.0.1", true, false], // a gateway elsewhere frees network+1
    ["v4", v4, "10.0.0.254", true, true], // gateway
    ["v4", v4, "10.0.0.255", true, true], // broadcast
    ["v4", v4, "10.0.1.0", false, false],
    ["v4", v4, "::a00:5", false, false], // other family
    ["v6", v6, "fd00::", false, true], // network, outside the default range
    ["v6", v6, "fd00::1", true, true], // default gateway
    ["v6", v6, "fd00::2", true, false],
    ["v6", v6, "fd00::ff", true, false], // no broadcast in IPv6
    ["v6", v6, "fd00::100", false, false],
  ];
  test.each(cases)("%s %s: in range %p, infrastructure %p", (_n, range, ip, inRange, infra) => {
    expect(rangeContains(range, parseIP(ip))).toBe(inRange);
    expect(isInfrastructure(range, parseIP(ip))).toBe(infra);
  });

  test("formatRange", () => {
    expect(formatRange(v4)).toBe("10.0.0.0-10.0.0.255");
    expect(formatRange(v6)).toBe("fd00::1-fd00::ff");
  });
});
