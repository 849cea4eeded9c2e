// The density benchmark's report: percentiles, a plain-text table, and a PNG chart (pngjs; the few labels it needs
// are drawn with a tiny built-in 5×7 pixel font, since a PNG has no text of its own). Pure: numbers in, text and
// image bytes out.
import { PNG } from 'pngjs';

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(rank, 1)) - 1] ?? Number.NaN;
}

/** A table with left-aligned first column and right-aligned others. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

// 5×7 glyphs: 7 rows of 5 pixels each ('#' on). Labels are drawn upper case.
const FONT: Record<string, readonly string[]> = {
  '0': [' ### ', '#   #', '#  ##', '# # #', '##  #', '#   #', ' ### '],
  '1': ['  #  ', ' ##  ', '  #  ', '  #  ', '  #  ', '  #  ', ' ### '],
  '2': [' ### ', '#   #', '    #', '   # ', '  #  ', ' #   ', '#####'],
  '3': ['#####', '   # ', '  #  ', '   # ', '    #', '#   #', ' ### '],
  '4': ['   # ', '  ## ', ' # # ', '#  # ', '#####', '   # ', '   # '],
  '5': ['#####', '#    ', '#### ', '    #', '    #', '#   #', ' ### '],
  '6': ['  ## ', ' #   ', '#    ', '#### ', '#   #', '#   #', ' ### '],
  '7': ['#####', '    #', '   # ', '  #  ', ' #   ', ' #   ', ' #   '],
  '8': [' ### ', '#   #', '#   #', ' ### ', '#   #', '#   #', ' ### '],
  '9': [' ### ', '#   #', '#   #', ' ####', '    #', '   # ', ' ##  '],
  '.': ['     ', '     ', '     ', '     ', '     ', ' ##  ', ' ##  '],
  '%': ['##   ', '##  #', '   # ', '  #  ', ' #   ', '#  ##', '   ##'],
  '/': ['     ', '    #', '   # ', '  #  ', ' #   ', '#    ', '     '],
  '-': ['     ', '     ', '     ', '#####', '     ', '     ', '     '],
  '=': ['     ', '     ', '#####', '     ', '#####', '     ', '     '],
  ':': ['     ', ' ##  ', ' ##  ', '     ', ' ##  ', ' ##  ', '     '],
  ',': ['     ', '     ', '     ', '     ', ' ##  ', '  #  ', ' #   '],
  ' ': ['     ', '     ', '     ', '     ', '     ', '     ', '     '],
  A: [' ### ', '#   #', '#   #', '#####', '#   #', '#   #', '#   #'],
  B: ['#### ', '#   #', '#   #', '#### ', '#   #', '#   #', '#### '],
  C: [' ### ', '#   #', '#    ', '#    ', '#    ', '#   #', ' ### '],
  D: ['#### ', '#   #', '#   #', '#   #', '#   #', '#   #', '#### '],
  E: ['#####', '#    ', '#    ', '#### ', '#    ', '#    ', '#####'],
  G: [' ### ', '#   #', '#    ', '# ###', '#   #', '#   #', ' ####'],
  H: ['#   #', '#   #', '#   #', '#####', '#   #', '#   #', '#   #'],
  I: [' ### ', '  #  ', '  #  ', '  #  ', '  #  ', '  #  ', ' ### '],
  L: ['#    ', '#    ', '#    ', '#    ', '#    ', '#    ', '#####'],
  M: ['#   #', '## ##', '# # #', '#   #', '#   #', '#   #', '#   #'],
  N: ['#   #', '##  #', '# # #', '#  ##', '#   #', '#   #', '#   #'],
  O: [' ### ', '#   #', '#   #', '#   #', '#   #', '#   #', ' ### '],
  P: ['#### ', '#   #', '#   #', '#### ', '#    ', '#    ', '#    '],
  R: ['#### ', '#   #', '#   #', '#### ', '# #  ', '#  # ', '#   #'],
  S: [' ####', '#    ', '#    ', ' ### ', '    #', '    #', '#### '],
  T: ['#####', '  #  ', '  #  ', '  #  ', '  #  ', '  #  ', '  #  '],
  U: ['#   #', '#   #', '#   #', '#   #', '#   #', '#   #', ' ### '],
  V: ['#   #', '#   #', '#   #', '#   #', '#   #', ' # # ', '  #  '],
  W: ['#   #', '#   #', '#   #', '# # #', '# # #', '# # #', ' # # '],
  X: ['#   #', '#   #', ' # # ', '  #  ', ' # # ', '#   #', '#   #'],
  Y: ['#   #', '#   #', ' # # ', '  #  ', '  #  ', '  #  ', '  #  '],
  K: ['#   #', '#  # ', '# #  ', '##   ', '# #  ', '#  # ', '#   #'],
  F: ['#####', '#    ', '#    ', '#### ', '#    ', '#    ', '#    '],
};

type Rgb = readonly [number, number, number];

class Canvas {
  readonly png: PNG;
  constructor(width: number, height: number, background: Rgb) {
    this.png = new PNG({ width, height });
    this.rect(0, 0, width, height, background);
  }
  pixel(x: number, y: number, [r, g, b]: Rgb): void {
    if (x < 0 || y < 0 || x >= this.png.width || y >= this.png.height) return;
    const i = (this.png.width * Math.floor(y) + Math.floor(x)) << 2;
    this.png.data[i] = r;
    this.png.data[i + 1] = g;
    this.png.data[i + 2] = b;
    this.png.data[i + 3] = 255;
  }
  rect(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let yy = Math.round(y); yy < Math.round(y + h); yy++) {
      for (let xx = Math.round(x); xx < Math.round(x + w); xx++) this.pixel(xx, yy, color);
    }
  }
  /** Text in the 5×7 font, `scale` pixels per font pixel; unknown characters are left blank. */
  text(x: number, y: number, text: string, color: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of text.toUpperCase()) {
      const glyph = FONT[ch] ?? [];
      for (let row = 0; row < glyph.length; row++) {
        for (let col = 0; col < 5; col++) {
          if (glyph[row]?.[col] === '#') this.rect(cx + col * scale, y + row * scale, scale, scale, color);
        }
      }
      cx += 6 * scale;
    }
  }
}

export interface DensityChartInput {
  /** Seconds from creation to Running, one per VMI. */
  toRunningSeconds: number[];
  /** Resident memory in MiB by what it is (e.g. "launcher per VM", "handler"). */
  memoryMiB: { label: string; value: number }[];
  title: string;
}

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];
const BAR: Rgb = [70, 130, 180];
const P50: Rgb = [46, 139, 87];
const P95: Rgb = [205, 92, 92];
const MEM: Rgb = [218, 145, 60];

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw) || 1;
}

/**
 * Two panels: left, every VMI's creation → Running time, sorted (a CDF turned on its side), with the P50 and P95
 * lines; right, resident memory per component.
 */
export function densityChart(input: DensityChartInput): Buffer {
  const width = 1100;
  const height = 520;
  const c = new Canvas(width, height, WHITE);
  c.text(20, 14, input.title, INK, 2);

  // Left panel: latencies.
  const left = { x: 80, y: 60, w: 560, h: 380 };
  const sorted = [...input.toRunningSeconds].sort((a, b) => a - b);
  const max = Math.max(1, ...sorted) * 1.1;
  const step = niceStep(max, 6);
  for (let v = 0; v <= max; v += step) {
    const y = left.y + left.h - (v / max) * left.h;
    c.rect(left.x, y, left.w, 1, GRID);
    c.text(
      left.x - 12 - 12 * String(Number(v.toFixed(1))).length,
      y - 7,
      String(Number(v.toFixed(1))),
      INK,
      2,
    );
  }
  const barW = sorted.length > 0 ? left.w / sorted.length : left.w;
  sorted.forEach((v, i) => {
    const h = (v / max) * left.h;
    c.rect(left.x + i * barW + 1, left.y + left.h - h, Math.max(1, barW - 2), h, BAR);
  });
  for (const [p, color] of [
    [50, P50],
    [95, P95],
  ] as const) {
    const v = percentile(sorted, p);
    if (Number.isNaN(v)) continue;
    const y = left.y + left.h - (v / max) * left.h;
    c.rect(left.x, y - 1, left.w, 2, color);
    c.text(left.x + 8, y - 18, `P${p} ${v.toFixed(1)} S`, color, 2);
  }
  c.rect(left.x, left.y, 1, left.h, INK);
  c.rect(left.x, left.y + left.h, left.w, 1, INK);
  c.text(left.x, left.y + left.h + 14, `CREATION TO RUNNING S, ${sorted.length} VMIS SORTED`, INK, 2);

  // Right panel: memory.
  const right = { x: 720, y: 60, w: 340, h: 380 };
  const memMax = Math.max(1, ...input.memoryMiB.map((m) => m.value)) * 1.15;
  const memStep = niceStep(memMax, 5);
  for (let v = 0; v <= memMax; v += memStep) {
    const y = right.y + right.h - (v / memMax) * right.h;
    c.rect(right.x, y, right.w, 1, GRID);
    c.text(right.x - 12 - 12 * String(Math.round(v)).length, y - 7, String(Math.round(v)), INK, 2);
  }
  const slot = input.memoryMiB.length > 0 ? right.w / input.memoryMiB.length : right.w;
  input.memoryMiB.forEach((m, i) => {
    const h = (m.value / memMax) * right.h;
    const x = right.x + i * slot + slot * 0.15;
    c.rect(x, right.y + right.h - h, slot * 0.7, h, MEM);
    c.text(x, right.y + right.h - h - 18, m.value.toFixed(0), INK, 2);
    c.text(x, right.y + right.h + 14 + (i % 2) * 18, m.label, INK, 1);
  });
  c.rect(right.x, right.y, 1, right.h, INK);
  c.rect(right.x, right.y + right.h, right.w, 1, INK);
  c.text(right.x, right.y + right.h + 52, 'RESIDENT MIB (RSS)', INK, 2);
  return PNG.sync.write(c.png);
}
