import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { densityChart, formatTable, percentile } from './density-report.ts';

describe('percentile', () => {
  it('takes the nearest rank of the sorted values', () => {
    const values = [9, 1, 8, 2, 7, 3, 6, 4, 5, 10];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile(values, 10)).toBe(1);
    expect(percentile([3], 95)).toBe(3);
  });

  it('is NaN without values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('formatTable', () => {
  it('pads the first column left and the others right, under a rule', () => {
    expect(
      formatTable(
        ['what', 'n'],
        [
          ['a', '1'],
          ['longer', '22'],
        ],
      ).split('\n'),
    ).toEqual(['what     n', '------  --', 'a        1', 'longer  22']);
  });
});

describe('densityChart', () => {
  const input = {
    title: 'N=3',
    toRunningSeconds: [4, 2, 8],
    memoryMiB: [
      { label: 'LAUNCHER', value: 60 },
      { label: 'HANDLER', value: 90 },
    ],
  };

  it('is a PNG of the documented size', () => {
    const png = PNG.sync.read(densityChart(input));
    expect([png.width, png.height]).toEqual([1100, 520]);
  });

  it('draws one bar per VMI, tallest last (sorted)', () => {
    const png = PNG.sync.read(densityChart(input));
    // Bar colour (steel blue) along a row just above the latency panel's axis: three separate runs of it.
    const y = 60 + 380 - 3;
    const blue = (x: number) => {
      const i = (png.width * y + x) << 2;
      return png.data[i] === 70 && png.data[i + 1] === 130 && png.data[i + 2] === 180;
    };
    let runs = 0;
    for (let x = 80; x < 640; x++) if (blue(x) && !blue(x - 1)) runs++;
    expect(runs).toBe(3);
    // The tallest bar (8 s) reaches higher than the first (2 s).
    const top = (x: number) => {
      for (let yy = 60; yy < 440; yy++) {
        const i = (png.width * yy + x) << 2;
        if (png.data[i] === 70 && png.data[i + 1] === 130 && png.data[i + 2] === 180) return yy;
      }
      return 440;
    };
    expect(top(80 + Math.floor((560 / 3) * 2.5))).toBeLessThan(top(80 + Math.floor(560 / 6)));
  });
});
