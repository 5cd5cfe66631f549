// The dashboard page: state, navigation (the URL's #network=...&ip=... or &window=...), and refreshes on
// every change the live stream reports. Everything it shows comes from the JSON API.
import { api } from "./api.js";
import { count, h, holderText, replace } from "./dom.js";
import { BITS, formatIP, parseIP, parseWindow } from "./ip.js";
import { Feed, showLive } from "./feed.js";
import { connectLive } from "./live.js";
import { MapView } from "./map_view.js";
import * as panels from "./panels.js";

const $ = (id) => document.getElementById(id);
/** Cells asked of the server: one per address up to this many, else blocks. */
const CELLS = 4096;
const POLL_MS = 5000;

const state = {
  networks: [],
  network: null,
  range: 0,
  family: 4,
  stack: [], // zoom trail: [{from, to}] as BigInt
  selected: null, // address text in the current network
  results: null,
  connection: "connecting",
  stream: null,
  poll: null,
};

const details = new Map(); // "network ip" -> /address answer, until the next change
const map = new MapView($("map"), $("tooltip"), {
  onSelect: (value) => selectAddress(formatIP(state.family, value)),
  onZoom: (w) => zoomTo(w),
  describe: describeCell,
});

function current() {
  return state.networks.find((n) => n.name === state.network);
}

function banner(message) {
  const b = $("banner");
  b.hidden = !message;
  b.textContent = message ?? "";
}

async function guarded(what, fn) {
  try {
    const v = await fn();
    banner(null);
    return v;
  } catch (e) {
    banner(`${what}: ${e.message}`);
    return undefined;
  }
}

// ---- the address map ----------------------------------------------------------------------------

function rootWindow(network, k) {
  const r = network.ranges[k];
  return r && { from: parseIP(r.from).value, to: parseIP(r.to).value, family: r.family };
}

async function loadMap() {
  const w = state.stack[state.stack.length - 1];
  const network = current();
  if (!w || !network) {
    replace($("crumbs"));
    return;
  }
  const data = await guarded("Cannot read the map", () =>
    api.map(network.name, formatIP(state.family, w.from), formatIP(state.family, w.to), CELLS));
  if (!data) return;
  map.setData(data);
  highlightResults();
  map.setSelected(state.selected ? parseIP(state.selected)?.value ?? null : null);
  panels.renderLegend($("legend"), data);
  panels.renderCrumbs($("crumbs"), state.family, state.stack, (k) => {
    state.stack.length = k + 1;
    loadMap();
  });
  const n = BigInt(data.count);
  $("map-note").textContent = data.mode === "address"
    ? `${count(n)} addresses, one cell each`
    : `${count(n)} addresses in ${count(data.cells)} blocks of ${count(data.blockSize)}: click a block to zoom in`;
}

function zoomTo(w) {
  state.stack.push({ from: w.from, to: w.to });
  loadMap();
}

function zoomOut() {
  if (state.stack.length > 1) {
    state.stack.pop();
  } else {
    // Beyond the range's window: the enclosing prefix twice the size.
    const w = state.stack[0];
    if (!w) return;
    let size = 1n;
    while (size < w.to - w.from + 1n) size <<= 1n;
    size <<= 1n;
    const max = 1n << BigInt(BITS[state.family]);
    if (size > max) return;
    const from = (w.from / size) * size;
    state.stack[0] = { from, to: from + size - 1n };
  }
  loadMap();
}

/** A window of at most CELLS addresses around `value`, aligned, inside `root`. */
function windowAround(root, value) {
  if (root.to - root.from + 1n <= BigInt(CELLS)) return null;
  const size = BigInt(CELLS);
  let from = root.from + ((value - root.from) / size) * size;
  let to = from + size - 1n;
  if (to > root.to) to = root.to;
  return { from, to };
}

async function describeCell(cell) {
  const data = map.data;
  if (data.mode !== "address" || !state.network) return null;
  const ip = formatIP(data.family, cell.start);
  const info = await addressInfo(state.network, ip);
  if (!info) return null;
  const lines = [ip, info.state + (info.reservedBy ? ` · reserved by ${info.reservedBy}` : "")];
  if (info.held) lines.push(`${holderText(info.held)} · ${info.held.node}`, `${info.held.ifName} · ${info.held.kind}${info.held.parkedAt ? " (parked)" : ""}`);
  return lines;
}

async function addressInfo(network, ip) {
  const key = `${network} ${ip}`;
  if (!details.has(key)) details.set(key, api.address(network, ip).catch(() => null));
  return details.get(key);
}

// ---- networks, navigation ---------------------------------------------------------------------------

function selectNetwork(name, range = 0) {
  const network = state.networks.find((n) => n.name === name);
  if (!network) return false;
  const changed = state.network !== name || state.range !== range;
  state.network = name;
  state.range = Math.min(range, Math.max(0, network.ranges.length - 1));
  if (changed || state.stack.length === 0) {
    const root = rootWindow(network, state.range);
    state.family = root?.family ?? 4;
    state.stack = root ? [{ from: root.from, to: root.to }] : [];
    if (changed) state.selected = null;
  }
  renderNetwork();
  return true;
}

function renderNetwork() {
  const network = current();
  panels.renderNetworks($("networks").tBodies[0], state.networks, state.network, (name) => {
    selectNetwork(name);
    panels.renderDetails($("details"), null);
    loadMap();
  });
  if (!network) return;
  $("network-title").textContent = network.name;
  const tag = $("network-tag");
  tag.className = network.configured ? "tag conf" : "tag";
  tag.textContent = network.configured
    ? `--conf network · ${count(network.held)} held`
    : `no config here: its ranges are on the nodes · ${count(network.held)} held`;
  panels.renderRanges($("ranges").tBodies[0], network, state.range, (k) => {
    selectNetwork(network.name, k);
    loadMap();
  });
}

/** The range of the current network whose window holds `value`, else whose subnet does, else 0. */
function rangeHolding(network, ip) {
  const k = network.ranges.findIndex((r) => r.family === ip.family && parseIP(r.from).value <= ip.value && ip.value <= parseIP(r.to).value);
  return k >= 0 ? k : 0;
}

async function navigate(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const name = params.get("network");
  if (!name || !selectNetwork(name, state.range)) return;
  const network = current();
  const ipText = params.get("ip"), windowText = params.get("window");
  const target = ipText ? parseIP(ipText) : windowText ? parseWindow(windowText) : null;
  if (!target) return loadMap();
  const value = target.value ?? target.from;
  selectNetwork(name, rangeHolding(network, { family: target.family, value }));
  const root = state.stack[0];
  const shown = state.stack[state.stack.length - 1];
  const inView = shown && target.family === state.family && shown.from <= value && (target.to ?? value) <= shown.to &&
    (ipText ? shown.to - shown.from < BigInt(CELLS) : shown.to - shown.from === target.to - target.from);
  if (root && target.family === state.family && !inView) {
    state.stack.length = 1;
    if (ipText) {
      const w = windowAround(root, value);
      if (w) state.stack.push(w);
    } else if (target.from !== root.from || target.to !== root.to) {
      state.stack.push({ from: target.from, to: target.to });
    }
  }
  await loadMap();
  if (ipText) await selectAddress(formatIP(target.family, target.value), false);
}

async function selectAddress(ip, updateHash = true) {
  state.selected = ip;
  map.setSelected(parseIP(ip)?.value ?? null);
  if (updateHash) history.replaceState(null, "", `#network=${encodeURIComponent(state.network)}&ip=${encodeURIComponent(ip)}`);
  details.delete(`${state.network} ${ip}`);
  const info = await addressInfo(state.network, ip);
  if (state.selected === ip) panels.renderDetails($("details"), info);
}

// ---- search -----------------------------------------------------------------------------------

let searchTimer;
function scheduleSearch(delay = 250) {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, delay);
}

async function runSearch() {
  const q = $("search-q").value.trim(), kind = $("search-kind").value, node = $("search-node").value;
  if (!q && !kind && !node) {
    state.results = null;
    panels.renderResults($("results"), null);
    highlightResults();
    return;
  }
  try {
    const result = await api.search(q, kind, node);
    if ($("search-q").value.trim() !== q) return; // typed on meanwhile
    state.results = result;
    panels.renderResults($("results"), result);
  } catch (e) {
    state.results = null;
    panels.renderResults($("results"), null, e.message);
  }
  highlightResults();
}

function highlightResults() {
  const hits = state.results?.hits.filter((hit) => hit.network === state.network) ?? [];
  map.setHighlights(hits.map((hit) => parseIP(hit.ip)?.value).filter((v) => v !== undefined));
}

async function loadNodes() {
  const nodes = await api.nodes().catch(() => null);
  if (!nodes) return;
  const select = $("search-node"), chosen = select.value;
  replace(select, h("option", { value: "" }, "every node"), nodes.map((n) => h("option", { value: n.node }, `${n.node} (${n.held})`)));
  select.value = nodes.some((n) => n.node === chosen) ? chosen : "";
}

// ---- live changes --------------------------------------------------------------------------------

const feed = new Feed($("feed"), $("feed-count"));

async function loadFeed() {
  const events = await api.changes().catch(() => null);
  if (events) feed.add(events, false);
}

function showStatus() {
  const mode = showLive($("live"), $("live-text"), state.connection, state.stream, POLL_MS);
  // Without a live stream the page reads again every few seconds.
  const polling = mode === "polling" || mode === "reconnecting";
  if (polling && !state.poll) state.poll = setInterval(() => scheduleRefresh(0), POLL_MS);
  if (!polling && state.poll) {
    clearInterval(state.poll);
    state.poll = null;
  }
}

let refreshing = null, again = false, refreshTimer;
function scheduleRefresh(delay = 200) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = refreshAll().finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        scheduleRefresh(0);
      }
    });
  }, delay);
}

async function refreshAll() {
  details.clear();
  const [status, networks, reservations] = await Promise.all([
    guarded("Cannot reach the controller", api.status),
    guarded("Cannot read the networks", api.networks),
    api.reservations().catch(() => null),
  ]);
  if (status) renderMeta(status);
  if (networks) {
    state.networks = networks;
    if (!state.network || !current()) {
      const preferred = networks.find((n) => n.configured) ?? networks[0];
      if (preferred) selectNetwork(preferred.name);
    } else {
      renderNetwork();
    }
  }
  if (reservations) panels.renderReservations($("reservations"), reservations, state.network);
  await Promise.all([loadMap(), loadNodes(), runSearch(), state.selected ? selectAddress(state.selected, false) : null]);
  document.body.dataset.updated = new Date().toISOString();
}

function renderMeta(s) {
  if (state.stream === null) {
    state.stream = s.stream;
    showStatus();
  }
  const item = (label, value) => h("span", {}, `${label} `, h("b", {}, value));
  replace($("meta"), item("store", s.store), item("replica", `${s.identity} (${s.leader ? "leader" : "follower"})`), item("version", s.version));
}

// ---- start --------------------------------------------------------------------------------------

$("zoom-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const w = parseWindow($("zoom-input").value);
  if (!w || w.family !== state.family) {
    banner(`"${$("zoom-input").value}" is not a prefix, range or address of this network's family`);
    return;
  }
  banner(null);
  zoomTo(w);
});
$("zoom-out").addEventListener("click", zoomOut);
$("search-form").addEventListener("submit", (e) => (e.preventDefault(), scheduleSearch(0)));
$("search-q").addEventListener("input", () => scheduleSearch());
$("search-kind").addEventListener("change", () => scheduleSearch(0));
$("search-node").addEventListener("change", () => scheduleSearch(0));
window.addEventListener("hashchange", () => navigate(location.hash));

await refreshAll();
await loadFeed();
if (location.hash) await navigate(location.hash);
document.body.dataset.ready = "true";

connectLive({
  onConnection: (c) => {
    const wasDown = state.connection === "down";
    state.connection = c;
    showStatus();
    // Back after a break: what happened meanwhile is read again (the server replays the changes it can).
    if (c === "open" && wasDown) {
      scheduleRefresh(0);
      loadFeed();
    }
  },
  onStream: (s) => {
    const wasBroken = state.stream?.state === "reconnecting";
    state.stream = s;
    showStatus();
    if (wasBroken && s.state === "live") scheduleRefresh(0);
  },
  onChange: (e) => {
    feed.add([e], true);
    scheduleRefresh();
  },
  onReservations: () => scheduleRefresh(0),
  onReset: () => {
    scheduleRefresh(0);
    loadFeed();
  },
});
