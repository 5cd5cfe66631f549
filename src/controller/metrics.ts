// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format (version 0.0.4). Enough for kube_ipam_*; no dependency.

type Labels = Readonly<Record<string, string>>;

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? "" : `{${keys.map((k) => `${k}="${escape(labels[k]!)}"`).join(",")}}`;
}

class Family {
  readonly #values = new Map<string, number | bigint>();

  constructor(readonly name: string, readonly help: string, readonly type: "counter" | "gauge") {}

  set(labels: Labels, value: number | bigint): void {
    this.#values.set(labelText(labels), value);
  }

  add(labels: Labels, delta: number): void {
    const key = labelText(labels);
    this.#values.set(key, Number(this.#values.get(key) ?? 0) + delta);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [labels, v] of this.#values) lines.push(`${this.name}${labels} ${v.toString()}`);
    return lines.join("\n");
  }
}

/** Observations counted into cumulative buckets, per label set, as Prometheus histograms are. */
class Histogram {
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number; labels: Labels }>();

  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { counts: this.buckets.map(() => 0), sum: 0, count: 0, labels });
    this.buckets.forEach((le, i) => {
      if (value <= le) s.counts[i]!++;
    });
    s.sum += value;
    s.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.#series) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${key} ${s.sum}`, `${this.name}_count${key} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export class Registry {
  readonly #families: (Family | Histogram)[] = [];

  counter(name: string, help: string): Family {
    return this.#add(new Family(name, help, "counter"));
  }

  gauge(name: string, help: string): Family {
    return this.#add(new Family(name, help, "gauge"));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }

  #add<F extends Family | Histogram>(f: F): F {
    this.#families.push(f);
    return f;
  }

  render(): string {
    return `${this.#families.map((f) => f.render()).join("\n")}\n`;
  }
}

export type { Family, Histogram };
