// Checks PromQL expressions (a dashboard's, alert rules') against the metrics some processes export:
//
//   const exported = exportedMetrics([controllerText, agentText]);   // from real /metrics scrapes
//   checkExpr('sum by (verb, le) (rate(kube_ipam_cni_request_duration_seconds_bucket[5m]))', exported)
//     // [] or problems: a metric nobody exports, a label a matcher or a grouping names that is not there
//
// The expression is parsed with Prometheus's own grammar (@prometheus-io/lezer-promql, the one its web UI
// uses), and the label names each subexpression carries are worked out as PromQL does: a selector has its
// metric's labels (plus the target labels Prometheus adds when it scrapes), `by (...)` keeps those labels and
// needs them below, `without (...)` drops them, histogram_quantile needs `le` and drops it, a binary
// operation's `on (...)` needs its labels on both sides. Functions not listed keep their argument's labels.
import { parser } from "@prometheus-io/lezer-promql";

type Node = NonNullable<ReturnType<typeof parser.parse>["topNode"]["firstChild"]>;

/** Labels Prometheus adds to every series it scrapes (the target's). */
export const TARGET_LABELS: readonly string[] = ["instance", "job"];

export interface ExportedMetrics {
  /** Every series name: counters and gauges as named, histograms as NAME_bucket, NAME_sum, NAME_count. */
  readonly names: ReadonlySet<string>;
  /** Label names seen on each series name's samples. */
  readonly labels: ReadonlyMap<string, ReadonlySet<string>>;
}

/** The metric names and labels in Prometheus text exposition documents (`# TYPE` lines and samples). */
export function exportedMetrics(texts: readonly string[]): ExportedMetrics {
  const names = new Set<string>();
  const labels = new Map<string, Set<string>>();
  for (const line of texts.flatMap((t) => t.split("\n"))) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name, kind] = type;
      const series = kind === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => name + s) : kind === "summary" ? [name!, `${name}_sum`, `${name}_count`] : [name!];
      for (const s of series) names.add(s);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const set = labels.get(sample[1]!) ?? new Set<string>();
    for (const m of (sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(m[1]!);
    labels.set(sample[1]!, set);
  }
  return { names, labels };
}

const EXPRESSIONS = new Set([
  "AggregateExpr", "BinaryExpr", "FunctionCall", "MatrixSelector", "NumberDurationLiteral", "OffsetExpr", "ParenExpr",
  "StringLiteral", "SubqueryExpr", "UnaryExpr", "VectorSelector", "StepInvariantExpr",
]);

function children(node: Node, names?: ReadonlySet<string>): Node[] {
  const out: Node[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (!names || names.has(c.name)) out.push(c);
  return out;
}

const child = (node: Node, name: string): Node | undefined => children(node).find((c) => c.name === name);

/** Problems with `expr` against `exported`: [] when every metric and label it names is there. */
export function checkExpr(expr: string, exported: ExportedMetrics): string[] {
  const problems: string[] = [];
  const text = (n: Node) => expr.slice(n.from, n.to);
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) problems.push(`cannot parse at ${n.from}: "${expr.slice(n.from, n.from + 20)}"`);
    },
  });
  if (problems.length > 0) return [...new Set(problems)];

  const need = (labels: ReadonlySet<string> | undefined, label: string, where: Node, what: string) => {
    if (labels !== undefined && !labels.has(label)) {
      problems.push(`${what} "${label}" in "${text(where)}": not a label there (${[...labels].sort().join(", ") || "none"})`);
    }
  };

  /** The label names of a subexpression's series; undefined for a scalar or a string. */
  const labelsOf = (node: Node): Set<string> | undefined => {
    const args = () => children(node, EXPRESSIONS);
    switch (node.name) {
      case "PromQL": case "ParenExpr": case "OffsetExpr": case "StepInvariantExpr": case "SubqueryExpr": case "UnaryExpr": case "MatrixSelector":
        return labelsOf(args()[0]!);
      case "NumberDurationLiteral": case "StringLiteral":
        return undefined;
      case "VectorSelector": {
        const id = child(node, "Identifier");
        if (!id) {
          problems.push(`"${text(node)}": a selector without a metric name`);
          return new Set(TARGET_LABELS);
        }
        const name = text(id);
        if (!exported.names.has(name)) problems.push(`"${name}": no process exports it`);
        const sampled = exported.labels.get(name);
        if (exported.names.has(name) && !sampled) problems.push(`"${name}": exported without samples, its labels cannot be checked`);
        const labels = new Set([...(sampled ?? []), ...TARGET_LABELS]);
        const matchers = child(node, "LabelMatchers");
        for (const m of matchers ? children(matchers) : []) {
          const label = child(m, "LabelName");
          if (label && text(label) !== "__name__") need(labels, text(label), node, "matcher on");
        }
        return labels;
      }
      case "FunctionCall": {
        const fn = text(child(node, "FunctionIdentifier")!);
        const body = child(node, "FunctionCallBody")!;
        const argNodes = children(body, EXPRESSIONS);
        const argLabels = argNodes.map(labelsOf);
        const string = (i: number) => (argNodes[i] ? text(argNodes[i]!).slice(1, -1) : "");
        switch (fn) {
          case "histogram_quantile": {
            const v = argLabels[1];
            need(v, "le", argNodes[1]!, "histogram_quantile needs");
            return v && new Set([...v].filter((l) => l !== "le"));
          }
          case "label_replace": // (v, dst, replacement, src, regex)
            need(argLabels[0], string(3), node, "label_replace reads");
            return argLabels[0] && new Set([...argLabels[0], string(1)]);
          case "vector":
            return new Set();
          case "scalar": case "time":
            return undefined;
          default:
            return argLabels.find((l) => l !== undefined);
        }
      }
      case "AggregateExpr": {
        const body = children(child(node, "FunctionCallBody")!, EXPRESSIONS);
        const v = labelsOf(body[body.length - 1]!);
        for (const param of body.slice(0, -1)) labelsOf(param);
        const modifier = child(node, "AggregateModifier");
        const grouping = modifier ? children(child(modifier, "GroupingLabels")!).map(text) : [];
        if (modifier && child(modifier, "By")) {
          for (const l of grouping) need(v, l, node, "by");
          return new Set(grouping);
        }
        if (modifier) return v && new Set([...v].filter((l) => !grouping.includes(l)));
        const op = text(child(node, "AggregateOp")!);
        return ["topk", "bottomk", "limitk", "limit_ratio"].includes(op) ? v : new Set();
      }
      case "BinaryExpr": {
        const [lhs, rhs] = args();
        const l = labelsOf(lhs!);
        const r = labelsOf(rhs!);
        const clause = child(node, "MatchingModifierClause");
        const groups = clause ? children(clause).filter((c) => c.name === "GroupingLabels").map((g) => children(g).map(text)) : [];
        if (clause && child(clause, "On")) for (const label of groups[0] ?? []) for (const side of [l, r]) need(side, label, node, "on");
        const groupRight = clause !== undefined && child(clause, "GroupRight") !== undefined;
        const extra = clause && (child(clause, "GroupLeft") || groupRight) ? groups[1] ?? [] : [];
        for (const label of extra) need(groupRight ? l : r, label, node, "group_left/group_right copies");
        if (l === undefined) return r;
        if (r === undefined) return l;
        if (child(node, "Or")) return new Set([...l, ...r]);
        return new Set([...(groupRight ? r : l), ...extra]);
      }
      default:
        problems.push(`"${text(node)}": ${node.name} is not understood by this check`);
        return undefined;
    }
  };
  labelsOf(tree.topNode as Node);
  return [...new Set(problems)];
}
