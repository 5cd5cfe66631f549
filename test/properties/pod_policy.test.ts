// Property: whatever a pod's kube-ipam annotations say, podPolicy gives a policy or refuses with a
// ConfigError (code 7) naming the annotation and the pod; a policy it gives is usable as is.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ConfigError } from "../../src/config/errors.ts";
import { BITS } from "../../src/ip/address.ts";
import { ANNOTATION, podPolicy } from "../../src/ipam/pod_policy.ts";
import type { Pod } from "../../src/k8s/types.ts";
import { anyJsonValue, anyText, expand, loadsOrRefuses, nearCIDR, nearIP } from "../support/arbitraries.ts";

const IFNAMES = ["eth0", "net1", "net2", "constructor", "__proto__", "toString", "hasOwnProperty"];

const list = <T>(item: fc.Arbitrary<T>) =>
  fc.tuple(fc.array(item, { maxLength: 3 }), fc.constantFrom(",", ", ", " ,", ",,")).map(([l, sep]) => l.join(sep));

const netmask = fc.oneof(fc.constantFrom("24", "16", "0", "32", "33", "128", "129", "255.255.0.0", "255.0.255.0", "ffff:ffff::",
  "ffff::ffff", "024", "-1"), nearIP);

const ipsMap = fc.dictionary(fc.constantFrom(...IFNAMES, "net3"),
  fc.oneof(fc.array(fc.oneof(nearIP, nearCIDR), { maxLength: 3 }), list(nearIP), anyJsonValue), { maxKeys: 3 });

const annotationValue = {
  [ANNOTATION.ip]: list(nearIP),
  [ANNOTATION.netmask]: list(netmask),
  [ANNOTATION.gateway]: list(nearIP),
  [ANNOTATION.ips]: fc.oneof(ipsMap.map((m) => JSON.stringify(m)), fc.json({ maxDepth: 2 }), anyText,
    fc.constantFrom('{"__proto__": ["10.0.0.5"]}', '{"constructor": "10.0.0.5"}', "[]", "null", '"net1"')),
  [ANNOTATION.sticky]: fc.oneof(fc.constantFrom("true", "false", "True", "yes", ""), anyText),
};

/** A near-valid value for each annotation, now and then a value of another type (the API sends strings). */
const annotations = fc.record(
  Object.fromEntries(Object.entries(annotationValue).map(([k, v]) =>
    [k, fc.oneof({ arbitrary: v as fc.Arbitrary<unknown>, weight: 9 }, { arbitrary: anyJsonValue, weight: 1 })])),
  { requiredKeys: [] },
);

const ownerReferences = fc.oneof(
  fc.array(fc.record({
    apiVersion: fc.constant("apps/v1"),
    kind: fc.constantFrom("StatefulSet", "ReplicaSet"),
    name: fc.constantFrom("web", ""),
    uid: fc.constantFrom("u1", ""),
    controller: fc.oneof(fc.boolean(), anyJsonValue),
  }, { requiredKeys: ["kind"] }), { maxLength: 2 }),
  anyJsonValue,
);

const pod = fc.record({
  metadata: fc.record({
    name: fc.constantFrom("web-0", "p"),
    namespace: fc.constantFrom("default", "ns"),
    uid: fc.constant("uid-1"),
    annotations: fc.oneof({ arbitrary: annotations, weight: 9 }, { arbitrary: anyJsonValue, weight: 1 }),
    ownerReferences,
  }, { requiredKeys: ["name", "uid"] }),
});

describe("podPolicy properties", () => {
  test("any annotations give a usable policy or code 7 naming the annotation and the pod", () => {
    fc.assert(fc.property(pod, fc.constantFrom(...IFNAMES), (p, ifName) => {
      const thePod = expand(p) as Pod;
      let message = "";
      const policy = loadsOrRefuses(() => {
        try {
          return podPolicy(thePod, ifName);
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
          message = (e as Error).message;
          throw e;
        }
      }, [7]);
      if (!policy) {
        expect(message).toMatch(/^Invalid annotation kube-ipam\.(ip|netmask|gateway|ips|sticky)\b.* of pod "(default|ns)\/(web-0|p)": /);
        return;
      }
      const seen = new Set<string>();
      for (const f of policy.fixed) {
        const key = `${f.ip.family}:${f.ip.value}`;
        expect(seen.has(key)).toBe(false);
        seen.add(key);
        if (f.prefixLength !== undefined) expect(f.prefixLength).toBeLessThanOrEqual(BITS[f.ip.family]);
        if (f.gateway) expect(f.gateway.family).toBe(f.ip.family);
      }
      expect(typeof policy.sticky).toBe("boolean");
    }), { numRuns: 1000 });
  }, 30_000);
});

describe("regressions found by the properties", () => {
  const podWith = (annotations: Record<string, unknown>): Pod =>
    ({ metadata: { name: "web-0", namespace: "default", uid: "u", annotations } }) as unknown as Pod;

  // The map was read with map[ifName], so an interface named after an Object.prototype member found the
  // member, and a pod that did not list it was refused with code 7 instead of being allocated dynamically.
  test.each(["constructor", "__proto__", "toString"])("kube-ipam.ips not listing interface %p leaves it dynamic", (ifName) => {
    expect(podPolicy(podWith({ [ANNOTATION.ips]: '{"net1": ["10.0.0.5"]}' }), ifName).fixed).toEqual([]);
  });

  test("kube-ipam.ips listing interface \"constructor\" fixes its address", () => {
    const policy = podPolicy(podWith({ [ANNOTATION.ips]: '{"constructor": ["10.0.0.5/24"]}' }), "constructor");
    expect(policy.fixed.map((f) => [f.ip.value, f.prefixLength])).toEqual([[0x0a000005n, 24]]);
  });

  test("an annotation that is not a string is code 7 naming it, not a TypeError", () => {
    expect(() => podPolicy(podWith({ [ANNOTATION.ip]: ["10.0.0.5"] }), "eth0"))
      .toThrow('Invalid annotation kube-ipam.ip of pod "default/web-0": expected a string, got ["10.0.0.5"]');
  });

  test("ownerReferences that are not a list of objects own nothing", () => {
    const p = { metadata: { name: "w", uid: "u", ownerReferences: [null, "x"] } } as unknown as Pod;
    expect(podPolicy(p, "eth0")).toEqual({ fixed: [], sticky: false, statefulSet: undefined });
  });
});
