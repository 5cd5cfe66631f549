// A small Prometheus registry: counters and gauges with labels, rendered in the text exposition
// format (version 0.0.4). Enough for kube_ipam_*; no dependency.

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

export class Registry {
  readonly #families: Family[] = [];

  counter(name: string, help: string): Family {
    return this.#add(new Family(name, help, "counter"));
  }

  gauge(name: string, help: string): Family {
    return this.#add(new Family(name, help, "gauge"));
  }

  #add(f: Family): Family {
    this.#families.push(f);
    return f;
  }

  render(): string {
    return `${this.#families.map((f) => f.render()).join("\n")}\n`;
  }
}

export type { Family };
