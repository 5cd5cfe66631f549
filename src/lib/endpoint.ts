// etcd endpoint URLs, checked one way wherever they come from: the network config, the CLI's flags, a
// direct use of the etcd client. Each caller words the problem for its own kind of error.

export type EndpointProblem = "not a URL" | "not http or https" | "more than scheme, host, port and path";

/** `http(s)://host:port`, an optional path, no trailing slash; or what is wrong with `text`. */
export function parseEndpoint(text: string): { readonly endpoint: string } | { readonly problem: EndpointProblem } {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return { problem: "not a URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { problem: "not http or https" };
  if (url.search || url.hash || url.username) return { problem: "more than scheme, host, port and path" };
  return { endpoint: url.origin + url.pathname.replace(/\/+$/, "") };
}
