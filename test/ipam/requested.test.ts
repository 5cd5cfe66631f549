import { describe, expect, test } from "bun:test";
import { formatIP, parseIP } from "../../src/ip/address.ts";
import { IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";
import { canonicalizeRange } from "../../src/ip/range.ts";
import type { RangeSet } from "../../src/ip/range_set.ts";
import { AddressUnavailableError } from "../../src/ipam/errors.ts";
import { assignRequested } from "../../src/ipam/requested.ts";

const SETS: RangeSet[] = [
  [
    canonicalizeRange({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.250" }),
    canonicalizeRange({ subnet: "10.0.1.0/24" }),
  ],
  [canonicalizeRange({ subnet: "fd00::/64", gateway: "fd00::ffff" })],
  [canonicalizeRange({ subnet: "10.0.2.0/24", gateway: "10.0.2.100" })],
];
const EXCLUDE = new IntervalSet(["10.0.0.20-10.0.0.29", "fd00::/120"].map((s) => tryParseInterval(s)!));

function assign(ips: string[]): Record<number, string> {
  const m = assignRequested("net", SETS, ips.map(parseIP), EXCLUDE);
  return Object.fromEntries([...m].map(([k, v]) => [k, formatIP(v)]));
}

describe("assignRequested", () => {
  const valid: [string, string[], Record<number, string>][] = [
    ["nothing requested", [], {}],
    ["one IPv4", ["10.0.0.50"], { 0: "10.0.0.50" }],
    ["second range of the first set", ["10.0.1.7"], { 0: "10.0.1.7" }],
    ["one per set, dual stack", ["fd00::1:5", "10.0.0.50", "10.0.2.5"], { 0: "10.0.0.50", 1: "fd00::1:5", 2: "10.0.2.5" }],
    ["range bounds are allowed", ["10.0.0.10"], { 0: "10.0.0.10" }],
    ["just after an exclude", ["10.0.0.30"], { 0: "10.0.0.30" }],
    ["network+1 when the gateway is elsewhere", ["10.0.2.1"], { 2: "10.0.2.1" }],
    ["the last IPv6 address (no broadcast)", ["fd00::ffff:ffff:ffff:ffff"], { 1: "fd00::ffff:ffff:ffff:ffff" }],
  ];
  test.each(valid)("%s", (_name, ips, expected) => {
    expect(assign(ips)).toEqual(expected);
  });

  const invalid: [string, string[], string, string][] = [
    ["outside every subnet", ["192.168.0.1"], "192.168.0.1", "it is in no range of this network"],
    ["in the subnet but before rangeStart", ["10.0.0.5"], "10.0.0.5", "it is in no range of this network"],
    ["in the subnet but after rangeEnd", ["10.0.0.251"], "10.0.0.251", "it is in no range of this network"],
    ["the IPv4 broadcast is outside the default range", ["10.0.1.255"], "10.0.1.255", "it is in no range of this network"],
    ["the default gateway", ["10.0.1.1"], "10.0.1.1", "it is the gateway, network or broadcast address of its subnet"],
    ["a configured gateway", ["10.0.2.100"], "10.0.2.100", "it is the gateway, network or broadcast address of its subnet"],
    ["an IPv6 gateway", ["fd00::ffff"], "fd00::ffff", "it is the gateway, network or broadcast address of its subnet"],
    ["excluded IPv4", ["10.0.0.25"], "10.0.0.25", 'it is excluded by ipam.exclude "10.0.0.20-10.0.0.29"'],
    ["excluded IPv6", ["fd00::7"], "fd00::7", 'it is excluded by ipam.exclude "fd00::-fd00::ff"'],
    ["two in one set", ["10.0.0.50", "10.0.1.50"], "10.0.1.50",
      '"10.0.0.50" was requested from the same range set 0; one address per range set'],
    ["the first failure is reported", ["10.0.0.50", "192.168.0.1", "10.0.0.25"], "192.168.0.1", "it is in no range of this network"],
  ];
  test.each(invalid)("%s", (_name, ips, ip, reason) => {
    let err: unknown;
    try {
      assign(ips);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AddressUnavailableError);
    const e = err as AddressUnavailableError;
    expect(e.ip).toBe(ip);
    expect(e.network).toBe("net");
    expect(e.message).toBe(`Cannot allocate address "${ip}" in network "net": ${reason}`);
  });
});
