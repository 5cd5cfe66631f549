// A small line chart as SVG, drawn from the numbers of a run: no dependency, readable in a browser
// and on GitHub.

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly width?: number;
  readonly height?: number;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** One chart: x and y axes from zero, a line and dots per series, a legend. */
export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 640, H = o.height ?? 360;
  const left = 64, right = 150, top = 40, bottom = 48;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = niceMax(Math.max(...xs)), yMax = niceMax(Math.max(...ys));
  const px = (x: number) => left + (x / xMax) * (W - left - right);
  const py = (y: number) => H - bottom - (y / yMax) * (H - top - bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - right / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = (yMax * i) / 5, x = (xMax * i) / 5;
    out.push(`<line x1="${left}" x2="${W - right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${+y.toFixed(1)}</text>`);
    out.push(`<text x="${px(x)}" y="${H - bottom + 16}" text-anchor="middle">${+x.toFixed(1)}</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="black"/>`);
  out.push(`<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="black"/>`);
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text x="16" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + H - bottom) / 2})">${esc(o.yLabel)}</text>`);
  series.forEach((s, k) => {
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = top + 10 + k * 18;
    out.push(`<line x1="${W - right + 12}" x2="${W - right + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${W - right + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
