// The dashboard's JSON API (docs/dashboard.md), as the page reads it.

export class ApiError extends Error {}

async function get(path) {
  let res;
  try {
    res = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    throw new ApiError(`The controller does not answer (${e.message})`);
  }
  // The login expired (the token's cache ran out and the token is no longer valid): the page itself then
  // answers with the login form.
  if (res.status === 401) {
    location.reload();
    throw new ApiError("Logged out: log in again");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(body?.error ?? `${path}: HTTP ${res.status}`);
  return body;
}

const seg = encodeURIComponent;

export const api = {
  status: () => get("/api/status"),
  networks: () => get("/api/networks"),
  map: (network, from, to, cells) =>
    get(`/api/networks/${seg(network)}/map?from=${seg(from)}&to=${seg(to)}&cells=${cells}`),
  address: (network, ip) => get(`/api/networks/${seg(network)}/address/${seg(ip)}`),
  search: (q, kind, node) => get(`/api/search?q=${seg(q)}&kind=${seg(kind)}&node=${seg(node)}`),
  reservations: () => get("/api/reservations"),
  changes: () => get("/api/changes"),
  nodes: () => get("/api/nodes"),
};
