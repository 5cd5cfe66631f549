// A value from a network config or an annotation, quoted for an error message.

const MAX_LENGTH = 80;
const MAX_DEPTH = 8;

/**
 * `v` as JSON, cut after `max` characters ("…"); a string stays a quoted string. Safe for any value
 * JSON.parse returns: one nested tens of thousands deep overflows the stack of JSON.stringify (and of
 * String()), and a megabyte string makes a megabyte message.
 *
 * @example quote({ subnet: "10.0.0.0/24" }) // '{"subnet":"10.0.0.0/24"}'
 */
export function quote(v: unknown, max = MAX_LENGTH): string {
  if (typeof v === "string") return JSON.stringify(v.length > max ? `${v.slice(0, max)}…` : v);
  const out: string[] = [];
  let length = 0;
  const put = (s: string) => {
    out.push(s);
    length += s.length;
  };
  const full = () => length > max;
  const walk = (x: unknown, depth: number): void => {
    if (Array.isArray(x)) {
      if (depth >= MAX_DEPTH) return put("[…]");
      put("[");
      for (let i = 0; i < x.length && !full(); i++) {
        if (i > 0) put(",");
        walk(x[i], depth + 1);
      }
      put("]");
    } else if (typeof x === "object" && x !== null) {
      if (depth >= MAX_DEPTH) return put("{…}");
      put("{");
      let first = true;
      for (const k in x) {
        if (full()) break;
        if (!Object.hasOwn(x, k)) continue;
        put(`${first ? "" : ","}${JSON.stringify(k.slice(0, max + 1))}:`);
        first = false;
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
      put("}");
    } else if (typeof x === "string") {
      put(JSON.stringify(x.slice(0, max + 1)));
    } else {
      put(JSON.stringify(x) ?? String(x));
    }
  };
  walk(v, 0);
  const text = out.join("");
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
