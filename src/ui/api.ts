// The dashboard's JSON API (docs/dashboard.md): what the page itself reads, so scripts can read it too.
// Read-only: every route is a GET.
import { compareIP, formatIP, type IP, tryParseIP } from "../ip/address.ts";
import { IntervalSet } from "../ip/interval_set.ts";
import { prefixContains } from "../ip/prefix.ts";
import { showJSON, showRows } from "../ipam/address_info.ts";
import { allocationJSON } from "../ipam/allocation_json.ts";
import { poolUsage, rangeUsageJSON, type UsageConfig } from "../ipam/usage.ts";
import type { Allocation } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { addressMap, type CellState, familyEnd, MAX_CELLS, type MapModel, mapModel, STATE_NAMES } from "./address_map.ts";
import type { LiveHub } from "./live.ts";
import { networkSummary } from "./network_view.ts";
import { KINDS, search, type SearchHit, searchedAddress } from "./search.ts";
import type { Reservations, StoreView } from "./store_view.ts";

export interface ApiContext {
  /** The network of the controller's --conf. */
  readonly config: UsageConfig;
  readonly view: StoreView;
  readonly hub: LiveHub;
  readonly storeLocation: string;
  readonly replica: () => { identity: string; leader: boolean };
}

export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function json(data: unknown, status = 200): Response {
  return new Response(`${JSON.stringify(data)}\n`, {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

const DEFAULT_CELLS = 4096;
const DEFAULT_SEARCH_LIMIT = 200;
const MAX_SEARCH_LIMIT = 5000;

/** The map models of the lists last read: an unchanged list is not indexed again. */
const models = new WeakMap<readonly Allocation[], { reservations: Reservations; byFamily: Map<4 | 6, MapModel> }>();

function modelOf(family: 4 | 6, config: UsageConfig | undefined, list: readonly Allocation[], r: Reservations): MapModel {
  let memo = models.get(list);
  if (!memo || memo.reservations !== r) models.set(list, memo = { reservations: r, byFamily: new Map() });
  let m = memo.byFamily.get(family);
  if (!m) memo.byFamily.set(family, m = mapModel(family, config, list, r.all));
  return m;
}

export class Api {
  readonly #ctx: ApiContext;

  constructor(ctx: ApiContext) {
    this.#ctx = ctx;
  }

  /** The config of `network` when the controller has it. */
  #configOf(network: string): UsageConfig | undefined {
    return network === this.#ctx.config.network ? this.#ctx.config : undefined;
  }

  async #known(network: string): Promise<void> {
    if (!(await this.#ctx.view.networks()).includes(network)) throw new HttpError(404, `No network "${network}" in the store`);
  }

  /** Answers `/api/...`; undefined for a path it does not know. */
  async handle(path: string, params: URLSearchParams): Promise<Response | undefined> {
    const parts = path.split("/").slice(2).map(decodeURIComponent); // "", "api", ...
    const [first, name, sub, arg] = parts;
    switch (first) {
      case "status":
        return json(this.#status());
      case "networks":
        if (name === undefined) return json(await this.networks());
        await this.#known(name);
        if (sub === undefined) return json(await this.network(name));
        if (sub === "usage" && arg === undefined) return json(await this.usage(name));
        if (sub === "allocations" && arg === undefined) return json(await this.allocations(name));
        if (sub === "map" && arg === undefined) return json(await this.map(name, params));
        if (sub === "address" && arg !== undefined) return json(await this.address(name, parseAddress(arg)));
        return undefined;
      case "search":
        return json(await this.search(params));
      case "reservations":
        return name === undefined ? json((await this.#ctx.view.reservations()).list) : undefined;
      case "changes":
        return name === undefined ? json(this.#ctx.hub.recent()) : undefined;
      case "nodes":
        return name === undefined ? json(await this.nodes()) : undefined;
      default:
        return undefined;
    }
  }

  #status() {
    return {
      version: VERSION,
      ...this.#ctx.replica(),
      store: this.#ctx.storeLocation,
      network: this.#ctx.config.network,
      stream: this.#ctx.hub.status,
    };
  }

  async network(name: string) {
    const [list, r] = await Promise.all([this.#ctx.view.allocations(name), this.#ctx.view.reservations()]);
    return networkSummary(name, this.#configOf(name), list, r.reserved);
  }

  async networks() {
    const names = await this.#ctx.view.networks();
    return Promise.all(names.map((n) => this.network(n)));
  }

  /** `kube-ipam usage -o json` of the configured network. */
  async usage(name: string) {
    const config = this.#configOf(name);
    if (!config) throw new HttpError(404, `The controller has no config for network "${name}": its ranges are on the nodes`);
    const [list, r] = await Promise.all([this.#ctx.view.allocations(name), this.#ctx.view.reservations()]);
    return poolUsage(config, list, r.reserved).map(rangeUsageJSON);
  }

  /** `kube-ipam ls -o json`. */
  async allocations(name: string) {
    const list = [...(await this.#ctx.view.allocations(name))];
    const parsed = new Map(list.map((a) => [a, tryParseIP(a.ip)!] as const));
    list.sort((a, b) => compareIP(parsed.get(a)!, parsed.get(b)!));
    return list.map(allocationJSON);
  }

  async map(name: string, params: URLSearchParams) {
    const config = this.#configOf(name);
    const [list, r] = await Promise.all([this.#ctx.view.allocations(name), this.#ctx.view.reservations()]);
    let from = params.get("from"), to = params.get("to");
    if (from === null || to === null) {
      const first = networkSummary(name, config, list, r.reserved).ranges[0];
      if (!first) throw new HttpError(404, `Network "${name}" has no range to map: give from and to`);
      from ??= first.from;
      to ??= first.to;
    }
    const a = parseAddress(from, "from"), b = parseAddress(to, "to");
    if (a.family !== b.family) throw new HttpError(400, `from "${from}" and to "${to}" are of different families`);
    if (b.value < a.value || b.value > familyEnd(a.family)) throw new HttpError(400, `to "${to}" is before from "${from}"`);
    const cellsText = params.get("cells");
    const cells = cellsText === null ? DEFAULT_CELLS : Number(cellsText);
    if (!Number.isInteger(cells) || cells < 1 || cells > MAX_CELLS) throw new HttpError(400, `cells "${cellsText}" is not a whole number from 1 to ${MAX_CELLS}`);
    return { network: name, configured: config !== undefined, ...addressMap(modelOf(a.family, config, list, r), a.value, b.value, cells) };
  }

  /** `kube-ipam show ADDR -o json`, plus `details`: the lines `kube-ipam show` prints. */
  async address(name: string, ip: IP) {
    const config = this.#configOf(name) ?? { network: name, rangeSets: [], exclude: IntervalSet.empty };
    const [list, r] = await Promise.all([this.#ctx.view.allocations(name), this.#ctx.view.reservations()]);
    const held = list.find((a) => {
      const x = tryParseIP(a.ip);
      return x !== undefined && compareIP(x, ip) === 0;
    });
    const reservedBy = r.reserved.nameOf(ip);
    let details = showRows(ip, config, held, reservedBy, new Date());
    if (!this.#configOf(name)) {
      // Without the network's config only the store's side is known: no range, exclude or gateway.
      details = details.filter(([k]) => !["In range", "Excluded", "Infrastructure"].includes(k));
      if (!held && !reservedBy) details = details.map(([k, v]) => [k, k === "Status" ? "not held (the controller has no config for this network: its ranges are on the nodes)" : v]);
    }
    return { ...showJSON(ip, config, held, reservedBy), configured: this.#configOf(name) !== undefined, state: this.#stateOf(name, ip, config, list, r), details };
  }

  #stateOf(name: string, ip: IP, config: UsageConfig, list: readonly Allocation[], r: Reservations): string {
    const model = modelOf(ip.family, this.#configOf(name) ? config : undefined, list, r);
    return STATE_NAMES[addressMap(model, ip.value, ip.value, 1).states![0] as CellState];
  }

  async search(params: URLSearchParams) {
    const q = params.get("q") ?? "";
    const kind = params.get("kind") || undefined;
    if (kind && !(KINDS as readonly string[]).includes(kind)) throw new HttpError(400, `kind "${kind}" is not one of ${KINDS.join(", ")}`);
    const limitText = params.get("limit");
    const limit = limitText === null ? DEFAULT_SEARCH_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) throw new HttpError(400, `limit "${limitText}" is not a whole number from 1 to ${MAX_SEARCH_LIMIT}`);
    const query = { q, kind, node: params.get("node") || undefined, network: params.get("network") || undefined, limit };
    const result = search(await this.#ctx.view.everything(), query);
    // An address nobody holds in the configured network: say what it is there, so the page can point at it.
    const ip = searchedAddress(q);
    const { network: configured, rangeSets } = this.#ctx.config;
    const unheld: SearchHit[] = [];
    if (ip && !kind && !query.node && (query.network ?? configured) === configured &&
      !result.hits.some((h) => h.network === configured) && rangeSets.flat().some((rg) => prefixContains(rg.subnet, ip))) {
      const [list, r] = await Promise.all([this.#ctx.view.allocations(configured), this.#ctx.view.reservations()]);
      unheld.push({ network: configured, ip: formatIP(ip), state: this.#stateOf(configured, ip, this.#ctx.config, list, r), held: null });
    }
    return { query, hits: [...result.hits, ...unheld], truncated: result.truncated };
  }

  async nodes() {
    const counts = new Map<string, number>();
    for (const list of (await this.#ctx.view.everything()).values()) {
      for (const a of list) counts.set(a.node, (counts.get(a.node) ?? 0) + 1);
    }
    return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, held]) => ({ node, held }));
  }
}

function parseAddress(text: string, what = "address"): IP {
  const ip = tryParseIP(text);
  if (!ip) throw new HttpError(400, `${what} "${text}" is not an IPv4 or IPv6 address`);
  return ip;
}
