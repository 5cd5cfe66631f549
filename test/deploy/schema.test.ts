// Every document of every deploy/*.yaml against the Kubernetes OpenAPI schema of its apiVersion and kind
// (Kubernetes v1.36.0's, from the npm package kubernetes-models 5.1.0: see test/support/k8s_schema.ts), as
// `kubectl apply` would have the API server judge it. And broken copies, so that the check is seen to fail.
// How the manifests fit the binary and each other, which no schema says, is manifests.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { schemaChecker } from "../support/k8s_schema.ts";

const DEPLOY = resolve(import.meta.dir, "../../deploy");
type Any = any;

const files = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f)).sort();
const docs: { file: string; doc: Any }[] = files.flatMap((file) => {
  const parsed = Bun.YAML.parse(readFileSync(join(DEPLOY, file), "utf8"));
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((d) => d !== null && d !== undefined).map((doc) => ({ file, doc }));
});
const find = (kind: string) => structuredClone(docs.find((d) => d.doc.kind === kind)!.doc);

let check: (doc: Any) => string[];
beforeAll(async () => {
  check = await schemaChecker(docs.map((d) => d.doc));
});

describe("deploy/*.yaml", () => {
  test("has the manifests", () => {
    expect(files).toEqual(["configmap.yaml", "kube-ipam-controller.yaml", "kube-ipam-daemonset.yaml", "kubernetes-datastore.yaml", "rbac.yaml"]);
    expect(docs.map((d) => d.doc.kind).sort()).toEqual([
      ...Array(7).fill("ClusterRole"), ...Array(5).fill("ClusterRoleBinding"), "ConfigMap", ...Array(3).fill("CustomResourceDefinition"),
      "DaemonSet", "Deployment", "Role", "RoleBinding", "Secret", ...Array(3).fill("ServiceAccount"),
    ]);
  });

  test.each(docs.map((d) => [d.file, d.doc.kind, d.doc.metadata?.name, d.doc] as const))(
    "%s: %s %s matches the schema of its apiVersion and kind",
    (_file, _kind, _name, doc) => {
      expect(check(doc)).toEqual([]);
    },
  );
});

describe("a broken copy is rejected", () => {
  const cases: [string, string, (d: Any) => void, string][] = [
    ["a wrong type", "DaemonSet", (d) => { d.spec.template.spec.containers[0].ports[0].containerPort = "9154"; },
      "data/spec/template/spec/containers/0/ports/0/containerPort must be integer"],
    ["a value outside an enum", "DaemonSet", (d) => { d.spec.template.spec.volumes[0].hostPath.type = "Dir"; },
      "data/spec/template/spec/volumes/0/hostPath/type must be equal to one of the allowed values"],
    ["a missing required field", "Deployment", (d) => { delete d.spec.selector; },
      "data/spec must have required property selector"],
    ["a missing container name", "Deployment", (d) => { delete d.spec.template.spec.containers[0].name; },
      "data/spec/template/spec/containers/0 must have required property name"],
    ["an unknown field (misspelled)", "DaemonSet", (d) => { d.spec.template.spec.containers[0].imagePullPolicyy = "Always"; },
      'unknown field "spec.template.spec.containers[0].imagePullPolicyy"'],
    ["an unknown field in metadata", "ConfigMap", (d) => { d.metadata.label = { a: "b" }; }, 'unknown field "metadata.label"'],
    ["an unknown top-level field", "ClusterRole", (d) => { d.spec = {}; }, 'unknown field "spec"'],
    ["a map value of the wrong type", "ConfigMap", (d) => { d.data["extra.conf"] = 1; }, "data/data/extra.conf must be string"],
    ["an unknown field in an array's element", "ClusterRoleBinding", (d) => { d.subjects[0].namespaces = ["x"]; },
      'unknown field "subjects[0].namespaces"'],
    ["a kind the schemas do not have", "ServiceAccount", (d) => { d.apiVersion = "v2"; },
      'no schema for apiVersion "v2" kind "ServiceAccount"'],
  ];

  test.each(cases)("%s (%s)", (_what, kind, breakIt, problem) => {
    const doc = find(kind);
    expect(check(doc)).toEqual([]);
    breakIt(doc);
    const problems = check(doc);
    expect(problems).toContain(problem);
  });
});
