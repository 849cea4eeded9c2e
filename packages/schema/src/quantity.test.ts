import { describe, expect, it } from 'vitest';
import { formatBytes, formatCpu, isQuantity, parseQuantity, quantityCeil } from './quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['2Ki', 2048],
    ['1Ti', 2 ** 40],
    ['500m', 0.5],
    ['1', 1],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['1k', 1000],
    ['1M', 1e6],
    ['1G', 1e9],
    ['1E', 1e18],
    ['1e3', 1000],
    ['1E3', 1000],
    ['2e-3', 0.002],
    ['+4', 4],
    ['-1', -1],
    ['100n', 100e-9],
    ['3u', 3e-6],
  ])('%s is %d', (text, value) => {
    expect(parseQuantity(text)).toBeCloseTo(value, 12);
  });

  it('takes integers as they are', () => {
    expect(parseQuantity(3)).toBe(3);
    expect(parseQuantity(Number.NaN)).toBeUndefined();
    expect(parseQuantity(Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it.each(['', 'abc', '1 Gi', '1GB', '1gi', 'Mi', '1.2.3', '1Kii', '--1', '1e', ' 1'])(
    'rejects %j',
    (text) => {
      expect(parseQuantity(text)).toBeUndefined();
      expect(isQuantity(text)).toBe(false);
    },
  );

  it('rejects what is not a string or number', () => {
    for (const v of [null, undefined, true, {}, [], ['1Gi']]) expect(parseQuantity(v)).toBeUndefined();
  });
});

describe('quantityCeil', () => {
  it('rounds up as Kubernetes Value() does', () => {
    expect(quantityCeil('500m')).toBe(1);
    expect(quantityCeil('1500m')).toBe(2);
    expect(quantityCeil('2')).toBe(2);
    expect(quantityCeil('bad')).toBeUndefined();
  });
});

describe('formatting', () => {
  it('formats bytes with the largest exact binary suffix', () => {
    expect(formatBytes(128 * 2 ** 20)).toBe('128Mi');
    expect(formatBytes(1536 * 2 ** 20)).toBe('1536Mi');
    expect(formatBytes(2 ** 30)).toBe('1Gi');
    expect(formatBytes(1000)).toBe('1000');
    expect(formatBytes(1024.5)).toBe('1025');
  });

  it('formats CPU as cores or millicores', () => {
    expect(formatCpu(0.1)).toBe('100m');
    expect(formatCpu(2)).toBe('2');
    expect(formatCpu(1.5)).toBe('1500m');
    expect(formatCpu(1 / 3)).toBe('334m');
  });

  it('round-trips through parseQuantity', () => {
    for (const bytes of [1, 1023, 1024, 3 * 2 ** 20, 5 * 2 ** 30 + 2 ** 20]) {
      expect(parseQuantity(formatBytes(bytes))).toBe(bytes);
    }
  });
});
