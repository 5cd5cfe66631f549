// resolv.conf text -> the result's `dns`, as host-local's parser reads it.
import type { Dns } from "../cni/result.ts";

export function parseResolvConf(text: string): Dns {
  const nameservers: string[] = [];
  const search: string[] = [];
  const options: string[] = [];
  let domain: string | undefined;
  for (const line of text.split("\n")) {
    const fields = line.replace(/[#;].*$/, "").trim().split(/\s+/).filter(Boolean);
    const [key, ...values] = fields;
    if (!key || values.length === 0) continue;
    switch (key) {
      case "nameserver":
        nameservers.push(values[0]!);
        break;
      case "domain":
        domain = values[0];
        break;
      case "search":
        search.push(...values);
        break;
      case "options":
        options.push(...values);
        break;
    }
  }
  return { nameservers, domain, search, options };
}
