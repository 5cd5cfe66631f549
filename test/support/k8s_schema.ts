// A Kubernetes object judged against the OpenAPI schema of its apiVersion and kind, as `kubectl apply`
// (strict field validation, kubectl's default) has the API server judge it, without a cluster:
//
//   const check = await schemaChecker(docs);   // the schemas of these objects' apiVersions and kinds
//   check(doc)                                  // [] when valid; else messages naming the field
//
// The schemas are those of the npm package kubernetes-models (5.1.0: Kubernetes v1.36.0's OpenAPI spec,
// merged with older releases' specs for API versions since removed), a devDependency only.
//   - Types, formats, enums and required fields: its validators, compiled from that spec with ajv.
//   - Unknown fields: the spec does not forbid them (no `additionalProperties: false`: the API server
//     rejects them from its Go types, kubeconform adds the rule for its -strict mode), so those validators
//     accept a misspelled field. The package's TypeScript declarations, generated from the same spec, list
//     every field of every type: the TypeScript checker walks the object against them.
import { resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "../..");
type Any = any;

/** The package's module for an apiVersion and kind: `kubernetes-models/apps/v1/DaemonSet`, `.../v1/ConfigMap`. */
function modulePath(doc: Any): string {
  return `kubernetes-models/${doc?.apiVersion}/${doc?.kind}`;
}

/** One TypeScript program that declares `t0: IKind0`, `t1: IKind1`, ... from the package's declarations. */
function declarations(paths: readonly string[]): { checker: ts.TypeChecker; types: ts.Type[] } {
  const file = resolve(ROOT, "test/support/__k8s_declarations__.ts"); // never written: served from memory
  const text = `${paths.map((path, n) => `import type { I${path.slice(path.lastIndexOf("/") + 1)} as T${n} } from "${path}";\n` +
    `export declare const t${n}: T${n};`).join("\n")}\n`;
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [],
    module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ESNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, lang, ...rest) => (f === file ? ts.createSourceFile(f, text, lang) : getSourceFile.call(host, f, lang, ...rest));
  host.fileExists = (f) => f === file || fileExists.call(host, f);
  host.readFile = (f) => (f === file ? text : readFile.call(host, f));
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file)!;
  const errors = ts.getPreEmitDiagnostics(program, source);
  if (errors.length > 0) {
    throw new Error(`Cannot load the declarations of ${paths.join(", ")}: ${errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, " ")).join("; ")}`);
  }
  const checker = program.getTypeChecker();
  const types = source.statements.filter(ts.isVariableStatement).map((s) => checker.getTypeAtLocation(s.declarationList.declarations[0]!.name));
  return { checker, types };
}

/** The object type to compare a JSON object or array with; undefined for any, unknown and scalars. */
function objectPart(checker: ts.TypeChecker, type: ts.Type): ts.Type | undefined {
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return undefined;
  const t = checker.getNonNullableType(type);
  const members = t.isUnion() ? t.types.filter((m) => m.flags & ts.TypeFlags.Object) : t.flags & ts.TypeFlags.Object ? [t] : [];
  const member = members.length === 1 ? members[0] : undefined;
  // An object type that declares nothing (the package's JSONSchemaPropsOrBool and OrArray, a CRD's nested
  // schema, are plain `object`) says nothing about the fields: not a schema to compare with.
  if (member && !checker.isArrayType(member) && checker.getPropertiesOfType(member).length === 0 &&
    !checker.getIndexInfoOfType(member, ts.IndexKind.String)) return undefined;
  return member;
}

/** Paths of the fields of `value` that its type does not declare, as the API server names them. */
function unknownFields(checker: ts.TypeChecker, type: ts.Type, value: unknown, path: string, out: string[]): string[] {
  const t = typeof value === "object" && value !== null ? objectPart(checker, type) : undefined;
  if (!t) return out;
  if (Array.isArray(value)) {
    const element = checker.isArrayType(t) ? checker.getTypeArguments(t as ts.TypeReference)[0] : undefined;
    if (element) value.forEach((v, i) => unknownFields(checker, element, v, `${path}[${i}]`, out));
    return out;
  }
  const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
  for (const [key, v] of Object.entries(value as object)) {
    const at = path ? `${path}.${key}` : key;
    const prop = checker.getPropertyOfType(t, key);
    if (prop) unknownFields(checker, checker.getTypeOfSymbol(prop), v, at, out);
    else if (index) unknownFields(checker, index.type, v, at, out);
    else out.push(at);
  }
  return out;
}

/**
 * A check of objects against the schemas of the apiVersions and kinds of `docs` (loaded once: compiling the
 * declarations takes a second or two). An object of another kind, or of a kind the package lacks, is a problem.
 */
export async function schemaChecker(docs: readonly Any[]): Promise<(doc: Any) => string[]> {
  const models = new Map<string, Any>();
  for (const doc of docs) {
    const path = modulePath(doc);
    if (!models.has(path)) models.set(path, await import(path).then((m) => m[doc.kind], () => undefined));
  }
  const known = [...models].filter(([, model]) => model !== undefined).map(([path]) => path);
  const { checker, types } = declarations(known);
  return (doc) => {
    const path = modulePath(doc);
    const Model = models.get(path);
    if (!Model) return [`no schema for apiVersion "${doc?.apiVersion}" kind "${doc?.kind}"`];
    let problems: string[] = [];
    try {
      new Model(doc).validate();
    } catch (e) {
      problems = (e as Error).message.split(", data").map((m, i) => (i === 0 ? m : `data${m}`));
    }
    const unknown = unknownFields(checker, types[known.indexOf(path)]!, doc, "", []);
    return [...problems, ...unknown.map((p) => `unknown field "${p}"`)];
  };
}
