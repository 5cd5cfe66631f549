// The address map on a canvas: one square per address (coloured by its state), or one per block with its
// fill as a stacked gauge (held, reserved, unavailable; the rest free). The server sends at most a few
// thousand cells whatever the window, so drawing is a few thousand rectangles.
import { formatIP, formatWindow, parseIP } from "./ip.js";

/** The server's one-character states (src/ui/address_map.ts) and their names. */
export const STATES = {
  d: "dynamic", q: "requested", f: "fixed", s: "sticky", p: "parked", m: "migrated",
  g: "gateway", n: "network", b: "broadcast", x: "excluded", o: "outside", r: "reserved", ".": "free", u: "unknown",
};

export const HELD_STATES = new Set(["d", "q", "f", "s", "p", "m"]);

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--s-${name}`).trim() || "#ccc";
}

export class MapView {
  #canvas; #tooltip; #handlers;
  #data = null;
  #layout = null;
  #hover = -1;
  #selected = null; // BigInt address
  #highlights = new Set(); // BigInt addresses, as strings
  #colors = {};

  /** handlers: onSelect(ip BigInt), onZoom({from, to}), describe(cell) -> Promise<{title, lines}> | {title, lines}. */
  constructor(canvas, tooltip, handlers) {
    this.#canvas = canvas;
    this.#tooltip = tooltip;
    this.#handlers = handlers;
    for (const name of [...Object.values(STATES), "held", "unavailable"]) this.#colors[name] = cssColor(name);
    canvas.tabIndex = 0;
    canvas.addEventListener("mousemove", (e) => this.#onMove(e));
    canvas.addEventListener("mouseleave", () => this.#setHover(-1));
    canvas.addEventListener("click", (e) => this.#onClick(this.#cellAt(e)));
    canvas.addEventListener("keydown", (e) => this.#onKey(e));
    new ResizeObserver(() => this.render()).observe(canvas.parentElement);
  }

  get data() {
    return this.#data;
  }

  /** A map answer of /api/networks/NAME/map. */
  setData(data) {
    this.#data = {
      ...data,
      fromValue: parseIP(data.from).value,
      blockSizeValue: BigInt(data.blockSize),
      countValue: BigInt(data.count),
    };
    this.#hover = -1;
    this.#tooltip.hidden = true;
    this.render();
  }

  setSelected(value) {
    this.#selected = value;
    this.render();
  }

  setHighlights(values) {
    this.#highlights = new Set(values.map(String));
    this.render();
  }

  /** The cell holding address `value`, or -1. */
  cellOf(value) {
    const d = this.#data;
    if (!d || value < d.fromValue || value >= d.fromValue + d.countValue) return -1;
    return Number((value - d.fromValue) / d.blockSizeValue);
  }

  /** What cell `i` covers. */
  cell(i) {
    const d = this.#data;
    const start = d.fromValue + BigInt(i) * d.blockSizeValue;
    let end = start + d.blockSizeValue - 1n;
    const last = d.fromValue + d.countValue - 1n;
    if (end > last) end = last;
    if (d.mode === "address") return { index: i, start, end, state: d.states[i], name: STATES[d.states[i]] };
    const n = (k) => BigInt(d.blocks[k][i]);
    return { index: i, start, end, held: n("held"), reserved: n("reserved"), unavailable: n("unavailable"), free: n("free") };
  }

  #computeLayout() {
    const d = this.#data;
    const width = Math.max(240, this.#canvas.parentElement.clientWidth);
    const cols = d.cells <= 256 ? 16 : d.cells <= 1024 ? 32 : 64;
    const rows = Math.ceil(d.cells / cols);
    const ctx = this.#canvas.getContext("2d");
    ctx.font = "10px ui-monospace, Menlo, Consolas, monospace";
    const rowSpan = d.blockSizeValue * BigInt(cols);
    const labels = [];
    for (let r = 0; r < rows; r++) labels.push(formatIP(d.family, d.fromValue + BigInt(r) * rowSpan));
    // IPv6 rows share most of their text (the window's prefix, in the zoom trail): only the rest is shown.
    if (d.family === 6 && labels.length > 1) {
      let common = 0;
      while (labels.every((l) => l[common] === labels[0][common]) && common < labels[0].length) common++;
      const cut = labels[0].lastIndexOf(":", common - 1);
      if (cut > 0) labels.forEach((l, k) => (labels[k] = `…${l.slice(cut)}`));
    }
    const widest = Math.max(...labels.map((l) => ctx.measureText(l).width));
    const gutter = Math.min(Math.ceil(widest) + 10, Math.floor(width * 0.3));
    const size = Math.max(4, Math.min(28, Math.floor((width - gutter) / cols)));
    return { cols, rows, size, gutter, labels, width: gutter + cols * size, height: rows * size };
  }

  render() {
    const d = this.#data;
    if (!d) return;
    const L = this.#layout = this.#computeLayout();
    const dpr = window.devicePixelRatio || 1;
    const c = this.#canvas;
    c.width = Math.round(L.width * dpr);
    c.height = Math.round(L.height * dpr);
    c.style.width = `${L.width}px`;
    c.style.height = `${L.height}px`;
    // The layout, for scripts and tests that point at a cell.
    Object.assign(c.dataset, { mode: d.mode, from: d.from, cells: d.cells, cols: L.cols, cell: L.size, gutter: L.gutter });
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, L.width, L.height);
    const gap = L.size >= 8 ? 1 : 0;
    // Row labels: the first address of each row (every few rows when they are small).
    ctx.font = "10px ui-monospace, Menlo, Consolas, monospace";
    ctx.fillStyle = "#8c97a5";
    ctx.textBaseline = "middle";
    const every = L.size >= 12 ? 1 : L.size >= 6 ? 4 : 8;
    for (let r = 0; r < L.rows; r += every) {
      let label = L.labels[r];
      while (label.length > 4 && ctx.measureText(label).width > L.gutter - 8) label = `…${label.slice(2)}`;
      ctx.fillText(label, 0, Math.max(6, r * L.size + L.size / 2));
    }
    for (let i = 0; i < d.cells; i++) {
      const x = L.gutter + (i % L.cols) * L.size, y = Math.floor(i / L.cols) * L.size;
      const s = L.size - gap;
      if (d.mode === "address") {
        ctx.fillStyle = this.#colors[STATES[d.states[i]]];
        ctx.fillRect(x, y, s, s);
      } else {
        this.#drawBlock(ctx, i, x, y, s);
      }
    }
    for (const v of this.#highlights) {
      const i = this.cellOf(BigInt(v));
      if (i >= 0) this.#outline(ctx, i, "#f59e0b", 2);
    }
    if (this.#selected !== null) {
      const i = this.cellOf(this.#selected);
      if (i >= 0) this.#outline(ctx, i, "#0f172a", 2);
    }
    if (this.#hover >= 0) this.#outline(ctx, this.#hover, "#0f172a", 1);
  }

  #drawBlock(ctx, i, x, y, s) {
    const d = this.#data;
    const cell = this.cell(i);
    const total = cell.end - cell.start + 1n;
    ctx.fillStyle = this.#colors.free;
    if (!d.configured) ctx.fillStyle = this.#colors.unknown;
    ctx.fillRect(x, y, s, s);
    let bottom = y + s;
    const layers = [["held", cell.held], ["reserved", cell.reserved], ["unavailable", d.configured ? cell.unavailable : 0n]];
    for (const [name, n] of layers) {
      if (n === 0n) continue;
      let hgt = Number((n * BigInt(s) * 1000n) / total) / 1000;
      if (hgt < 3) hgt = Math.min(3, s / 3); // anything at all shows
      ctx.fillStyle = this.#colors[name];
      ctx.fillRect(x, bottom - hgt, s, hgt);
      bottom -= hgt;
    }
  }

  #outline(ctx, i, color, w) {
    const L = this.#layout;
    const x = L.gutter + (i % L.cols) * L.size, y = Math.floor(i / L.cols) * L.size;
    ctx.strokeStyle = color;
    ctx.lineWidth = w;
    const gap = L.size >= 8 ? 1 : 0;
    ctx.strokeRect(x + w / 2 - (w > 1 ? 1 : 0), y + w / 2 - (w > 1 ? 1 : 0), L.size - gap - w + (w > 1 ? 2 : 0), L.size - gap - w + (w > 1 ? 2 : 0));
  }

  #cellAt(e) {
    const L = this.#layout;
    if (!L) return -1;
    const rect = this.#canvas.getBoundingClientRect();
    const x = e.clientX - rect.left - L.gutter, y = e.clientY - rect.top;
    if (x < 0 || y < 0) return -1;
    const col = Math.floor(x / L.size), row = Math.floor(y / L.size);
    if (col >= L.cols) return -1;
    const i = row * L.cols + col;
    return i < this.#data.cells ? i : -1;
  }

  #onMove(e) {
    const i = this.#cellAt(e);
    this.#setHover(i);
    if (i < 0) return;
    const wrap = this.#canvas.parentElement.getBoundingClientRect();
    const t = this.#tooltip;
    const left = e.clientX - wrap.left + 14, top = e.clientY - wrap.top + 14;
    t.style.left = `${Math.min(left, wrap.width - 260)}px`;
    t.style.top = `${top}px`;
  }

  async #setHover(i) {
    if (i === this.#hover) return;
    this.#hover = i;
    this.render();
    const t = this.#tooltip;
    if (i < 0) {
      t.hidden = true;
      return;
    }
    const cell = this.cell(i);
    const show = (info) => {
      if (this.#hover !== i) return;
      t.replaceChildren(...info.map((line, k) => {
        const el = document.createElement("div");
        el.className = k === 0 ? "t-ip" : "t-sub";
        el.textContent = line;
        return el;
      }));
      t.hidden = false;
    };
    show(this.#summary(cell));
    const more = await this.#handlers.describe(cell);
    if (more) show(more);
  }

  /** The tooltip's lines before (or without) asking the server. */
  #summary(cell) {
    const d = this.#data;
    if (d.mode === "address") return [formatIP(d.family, cell.start), cell.name];
    const total = cell.end - cell.start + 1n;
    const f = (n) => n.toLocaleString("en-US");
    const parts = [`${f(cell.held)} held`, `${f(cell.reserved)} reserved`];
    if (d.configured) parts.push(`${f(cell.free)} free`, `${f(cell.unavailable)} not handed out`);
    return [formatWindow(d.family, cell.start, cell.end), `${f(total)} addresses: ${parts.join(", ")}`, "click to zoom in"];
  }

  #onClick(i) {
    if (i < 0) return;
    const cell = this.cell(i);
    if (this.#data.mode === "address") this.#handlers.onSelect(cell.start);
    else this.#handlers.onZoom({ from: cell.start, to: cell.end });
  }

  #onKey(e) {
    const d = this.#data, L = this.#layout;
    if (!d || !L) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -L.cols, ArrowDown: L.cols };
    if (e.key in moves) {
      e.preventDefault();
      const from = this.#hover >= 0 ? this.#hover : this.#selected !== null ? Math.max(0, this.cellOf(this.#selected)) : 0;
      this.#setHover(Math.max(0, Math.min(d.cells - 1, from + moves[e.key])));
    } else if (e.key === "Enter" && this.#hover >= 0) {
      this.#onClick(this.#hover);
    }
  }
}
