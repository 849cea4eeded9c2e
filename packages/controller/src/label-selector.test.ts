import { describe, expect, it } from 'vitest';
import { compileSelector, LabelSelectorError } from './label-selector.ts';

describe('compileSelector', () => {
  it('prints the canonical string form Kubernetes uses for the scale subresource', () => {
    const s = compileSelector({
      matchLabels: { tier: 'web', app: 'shop' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['b', 'a'] },
        { key: 'legacy', operator: 'DoesNotExist' },
        { key: 'gpu', operator: 'Exists' },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
      ],
    });
    expect(s.text).toBe('app=shop,env notin (dev),gpu,!legacy,tier=web,zone in (a,b)');
    expect(compileSelector({}).text).toBe('');
    expect(compileSelector({}).empty).toBe(true);
  });

  it('matches labels', () => {
    const s = compileSelector({
      matchLabels: { app: 'shop' },
      matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }],
    });
    expect(s.matches({ app: 'shop' })).toBe(true);
    expect(s.matches({ app: 'shop', legacy: 'y' })).toBe(false);
    expect(s.matches(undefined)).toBe(false);
    expect(compileSelector({}).matches(undefined)).toBe(true);
  });

  it('rejects malformed expressions with the index and what is wrong', () => {
    expect(() => compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] })).toThrow(
      LabelSelectorError,
    );
    expect(() =>
      compileSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
    ).toThrow(/matchExpressions\[0\]/);
    expect(() =>
      compileSelector({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }),
    ).toThrow(/not one of In, NotIn, Exists, DoesNotExist/);
  });
});
