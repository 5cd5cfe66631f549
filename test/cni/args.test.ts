import { describe, expect, test } from "bun:test";
import { type CniArgs, parseCniArgs } from "../../src/cni/args.ts";
import { CniError } from "../../src/cni/errors.ts";

describe("parseCniArgs", () => {
  const valid: [string, Partial<CniArgs>][] = [
    ["", { ips: [] }],
    ["IgnoreUnknown=1", { ips: [] }],
    ["K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1-2-3",
      { podNamespace: "default", podName: "web-0", podInfraContainerID: "abc", podUID: "1-2-3", ips: [] }],
    ["IP=10.0.0.5", { ips: ["10.0.0.5"] }],
    ["IP=10.0.0.5,fd00::5", { ips: ["10.0.0.5", "fd00::5"] }],
    ["IP= 10.0.0.5 , fd00::5 ,", { ips: ["10.0.0.5", "fd00::5"] }],
    ["IP=", { ips: [] }],
    ["K8S_POD_NAME=", { podName: undefined, ips: [] }], // empty is absent
    [";;K8S_POD_NAME=a;;", { podName: "a", ips: [] }], // empty items skipped
    ["K8S_POD_NAME=a=b", { podName: "a=b" }], // value keeps later "="
    ["K8S_POD_NAME=a;K8S_POD_NAME=b", { podName: "b" }], // last wins
    ["IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=a", { podName: "a", ips: [] }],
    ["FOO=bar;IgnoreUnknown=true", { ips: [] }],
    ["FOO=bar;IgnoreUnknown=TRUE", { ips: [] }],
    ["FOO=bar;IgnoreUnknown=t", { ips: [] }],
  ];
  test.each(valid)("%p", (raw, expected) => {
    const args = parseCniArgs(raw);
    for (const [k, v] of Object.entries(expected)) expect([k, args[k as keyof CniArgs]]).toEqual([k, v]);
  });

  const invalid: [string, string][] = [
    ["FOO=bar", 'CNI_ARGS: unknown args ["FOO"]: set IgnoreUnknown=1 to allow them'],
    ["FOO=1;K8S_POD_NAME=a;BAR=2", 'CNI_ARGS: unknown args ["FOO","BAR"]: set IgnoreUnknown=1 to allow them'],
    ["FOO=bar;IgnoreUnknown=0", 'CNI_ARGS: unknown args ["FOO"]: set IgnoreUnknown=1 to allow them'],
    ["FOO=bar;IgnoreUnknown=false", 'CNI_ARGS: unknown args ["FOO"]: set IgnoreUnknown=1 to allow them'],
    ["FOO=bar;IgnoreUnknown=", 'CNI_ARGS: unknown args ["FOO"]: set IgnoreUnknown=1 to allow them'],
    ["k8s_pod_name=a", 'CNI_ARGS: unknown args ["k8s_pod_name"]: set IgnoreUnknown=1 to allow them'], // keys are case-sensitive
    ["K8S_POD_NAME", 'CNI_ARGS: invalid pair "K8S_POD_NAME": expected KEY=VALUE'],
    ["=value", 'CNI_ARGS: invalid pair "=value": expected KEY=VALUE'],
    ["IgnoreUnknown=1;junk", 'CNI_ARGS: invalid pair "junk": expected KEY=VALUE'],
  ];
  test.each(invalid)("refuses %p", (raw, message) => {
    let err: unknown;
    try {
      parseCniArgs(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(4);
    expect((err as CniError).message).toBe(message);
  });
});
