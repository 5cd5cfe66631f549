// Building the page from data without innerHTML: pod names and the like are text, never markup.

/** h("td", {class: "num", dataset: {size: "3"}}, "text", childNode, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v); // the CSSOM, which the page's CSP allows, not a style attribute
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
}

const SUPERSCRIPT = "⁰¹²³⁴⁵⁶⁷⁸⁹";

/** 1234567 -> "1,234,567"; beyond a trillion (IPv6) "1.84 × 10¹⁹". Counts may be decimal strings beyond 2^53. */
export function count(n) {
  if (n === null || n === undefined) return "—";
  const v = BigInt(n);
  if (v < 1000000000000n) return v.toLocaleString("en-US");
  const digits = v.toString();
  const exp = digits.length - 1;
  const mantissa = `${digits[0]}.${digits.slice(1, 3)}`;
  return `${mantissa} × 10${[...String(exp)].map((d) => SUPERSCRIPT[Number(d)]).join("")}`;
}

/** The exact count, for a title. */
export function exact(n) {
  return n === null || n === undefined ? "" : BigInt(n).toLocaleString("en-US");
}

/** Held share of `size` as the CLI prints it: "<1%", ">99%", "-" for an empty range. */
export function percent(part, whole) {
  const p = BigInt(part), w = BigInt(whole);
  if (w === 0n) return "-";
  if (p === 0n) return "0%";
  if (p >= w) return "100%";
  const r = Number((p * 200n + w) / (2n * w));
  if (r < 1) return "<1%";
  if (r > 99) return ">99%";
  return `${r}%`;
}

/** A usage bar: held then reserved, out of size. */
export function bar(size, used, reserved) {
  const s = BigInt(size || 0);
  const share = (n) => (s === 0n ? 0 : Number((BigInt(n || 0) * 100000n) / s) / 1000);
  const held = share(used), res = share(reserved);
  return h("div", { class: "bar-cell" },
    h("div", { class: "bar", title: `${count(used)} held, ${count(reserved)} reserved of ${count(size)}` },
      h("span", { class: "held", style: { width: `${held > 0 && held < 0.6 ? 0.6 : held}%` } }),
      h("span", { class: "reserved", style: { width: `${res > 0 && res < 0.6 ? 0.6 : res}%` } })),
    h("span", { class: "pct" }, percent(used || 0, size || 0)));
}

export function ago(iso, now = Date.now()) {
  let s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (Number.isNaN(s)) return "?";
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  s %= 60;
  if (d > 0) return `${d}d${hr}h`;
  if (hr > 0) return `${hr}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString("en-GB", { hour12: false });
}

/** "ns/pod", or "container 0123456789ab" for a holder without a pod. */
export function holderText(held) {
  if (!held) return "";
  return held.podName ? `${held.podNamespace ?? "-"}/${held.podName}` : `container ${held.containerID.slice(0, 12)}`;
}
