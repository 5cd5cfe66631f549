// The page's panels, each drawn from API data: networks, ranges, the address card, search results, the
// change feed, reservations, the legend and the zoom trail.
import { ago, bar, clock, count, exact, h, holderText, replace } from "./dom.js";
import { formatWindow } from "./ip.js";
import { STATES } from "./map_view.js";

function swatch(name) {
  const i = h("i");
  i.style.background = `var(--s-${name})`;
  return i;
}

export function badge(state) {
  return h("span", { class: "badge", dataset: { state } }, swatch(state), state);
}

/** A link to the map: `#network=NAME&ip=IP` or `#network=NAME&window=CIDR`. */
export function mapLink(network, what, text) {
  const key = what.includes("/") || what.includes("-") ? "window" : "ip";
  return h("a", { href: `#network=${encodeURIComponent(network)}&${key}=${encodeURIComponent(what)}`, class: "mono" }, text ?? what);
}

/** Per family, the sums of the network's ranges: {4: {size, used, reserved, free}, 6: ...}. */
function totalsByFamily(network) {
  const out = new Map();
  network.usage?.forEach((u, k) => {
    const family = network.ranges[k].family;
    const t = out.get(family) ?? { size: 0n, used: 0n, reserved: 0n, free: 0n };
    for (const key of ["size", "used", "reserved", "free"]) t[key] += BigInt(u[key]);
    out.set(family, t);
  });
  return [...out.entries()].sort(([a], [b]) => a - b);
}

export function renderNetworks(tbody, networks, selected, onSelect) {
  replace(tbody, networks.map((n) => {
    const families = totalsByFamily(n);
    const tag = (f) => (families.length > 1 ? h("span", { class: "fam" }, `IPv${f}`) : null);
    const stacked = (key) => h("td", { class: "num" }, families.length === 0
      ? h("span", { class: "dim" }, "—")
      : families.map(([f, t]) => h("div", { title: exact(t[key]) }, count(t[key]))));
    return h("tr", { class: n.name === selected ? "selected" : "", dataset: { network: n.name }, onclick: () => onSelect(n.name) },
      h("td", { class: "name" }, n.name, " ", n.configured ? h("span", { class: "tag conf", title: "the controller's --conf network" }, "conf") : null),
      h("td", { class: "mono" }, n.ranges.length ? n.ranges.map((r) => h("div", {}, r.subnet)) : h("span", { class: "dim" }, "nothing held")),
      h("td", { class: "num", dataset: { key: "held" } }, count(n.held)),
      h("td", { class: "num", dataset: { key: "parked" } }, count(n.parked)),
      stacked("reserved"),
      stacked("free"),
      h("td", {}, families.length
        ? families.map(([f, t]) => h("div", { class: "fam-bar" }, tag(f), bar(t.size, t.used, t.reserved)))
        : h("span", { class: "dim" }, "no config here: held addresses only")));
  }));
}

export function renderRanges(tbody, network, active, onPick) {
  replace(tbody, network.ranges.map((r, k) => {
    const u = network.usage?.[k];
    const num = (key) => h("td", { class: "num", title: u ? exact(u[key]) : null, dataset: { key, value: u ? String(u[key]) : "" } },
      u ? count(u[key]) : h("span", { class: "dim" }, "—"));
    return h("tr", {
      class: k === active ? "selected" : "",
      dataset: { subnet: r.subnet, range: r.range ?? "", rangeSet: r.rangeSet ?? "" },
      onclick: () => onPick(k),
    },
      h("td", {}, r.rangeSet ?? "—"),
      h("td", { class: "mono" }, r.subnet),
      h("td", { class: "mono" }, r.range ?? h("span", { class: "dim" }, "inferred from held addresses")),
      num("size"), num("used"), num("reserved"), num("free"),
      h("td", {}, u ? bar(u.size, u.used, u.reserved) : ""));
  }));
}

/** The address card: what `kube-ipam show` says of it. */
export function renderDetails(el, info) {
  if (!info) {
    replace(el, h("h3", {}, "Address"), h("p", { class: "hint" }, "Hover over the map to see an address; click one to keep it here."));
    return;
  }
  const rows = info.details.filter(([k]) => k !== "Address");
  replace(el,
    h("h3", {}, "Address"),
    h("div", { class: "ip", dataset: { ip: info.ip } }, info.ip, badge(info.state)),
    h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { key: k } }, v)])));
}

export function renderResults(el, result, error) {
  if (error) return replace(el, h("p", { class: "empty" }, error));
  if (!result) return replace(el);
  if (result.hits.length === 0) return replace(el, h("p", { class: "empty" }, "Nothing matches"));
  replace(el,
    h("div", { class: "summary" }, `${result.hits.length}${result.truncated ? "+" : ""} result${result.hits.length === 1 ? "" : "s"}`),
    h("ul", {}, result.hits.map((hit) => h("li", { dataset: { ip: hit.ip, network: hit.network } },
      mapLink(hit.network, hit.ip),
      badge(hit.state),
      h("span", { class: "who" }, hit.held ? `${holderText(hit.held)} · ${hit.held.node} · ${hit.network}` : hit.network)))));
}

export function feedItem(e, fresh) {
  return h("li", { class: fresh ? "new" : "", dataset: { id: e.id, ip: e.ip ?? "", kind: e.kind } },
    h("span", {}, e.ip ? mapLink(e.network, e.ip) : h("span", { class: "dim" }, "an address"), " ",
      h("span", { class: `badge ${e.kind}` }, e.kind)),
    h("span", { class: "when", title: e.at }, clock(e.at)),
    h("span", { class: "who" }, [e.holder ? `${holderText(e.holder)} · ${e.holder.node}` : "", e.network].filter(Boolean).join(" · ")));
}

export function renderReservations(el, list, network) {
  if (list.length === 0) return replace(el, h("p", { class: "empty" }, "No reservations"));
  replace(el, list.map((r) => h("div", { class: "res", dataset: { name: r.name } },
    h("div", { class: "head" }, h("span", { class: "name" }, r.name), h("span", { class: "dim", title: r.createdAt }, `${ago(r.createdAt)} ago`)),
    h("div", { class: "entries" }, r.entries.map((e) => (network ? mapLink(network, e) : h("code", {}, e)))))));
}

const ADDRESS_LEGEND = ["free", "dynamic", "requested", "fixed", "sticky", "parked", "migrated", "reserved", "excluded", "gateway", "network", "outside"];

export function renderLegend(el, data) {
  if (!data) return replace(el);
  const item = (name, label = name) => h("span", {}, swatch(name), label);
  if (data.mode === "address") {
    const names = data.configured ? ADDRESS_LEGEND : ["unknown", "dynamic", "requested", "fixed", "sticky", "parked", "migrated", "reserved"];
    return replace(el, names.map((n) => item(n, n === "network" ? "network / broadcast" : n === "outside" ? "outside the ranges" : n === "unknown" ? "not held (no config here)" : n)));
  }
  const size = BigInt(data.blockSize);
  replace(el,
    h("span", {}, `each cell: ${size.toLocaleString("en-US")} addresses, filled from the bottom:`),
    item("held"), item("reserved"),
    data.configured ? item("unavailable", "not handed out (gateway, excluded, outside the ranges)") : null,
    item(data.configured ? "free" : "unknown", data.configured ? "free" : "not held"));
}

/** The zoom trail: each window the map was opened on, the last one current. */
export function renderCrumbs(el, family, stack, onPick) {
  replace(el, stack.flatMap((w, k) => {
    const label = formatWindow(family, w.from, w.to);
    const node = k === stack.length - 1 ? h("span", {}, label) : h("a", { href: "#", onclick: (e) => (e.preventDefault(), onPick(k)) }, label);
    return k === 0 ? [node] : [h("span", { class: "sep" }, "›"), node];
  }));
}

export { STATES };
