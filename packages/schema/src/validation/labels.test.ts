import { describe, expect, it } from 'vitest';
import { FieldPath } from './causes.ts';
import { labelSelectorMatches, validateLabelSelector } from './labels.ts';

describe('labelSelectorMatches', () => {
  const labels = { app: 'web', tier: 'front' };
  it.each([
    [{}, true],
    [{ matchLabels: { app: 'web' } }, true],
    [{ matchLabels: { app: 'db' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
  ])('%j → %s', (selector, expected) => {
    expect(labelSelectorMatches(selector, labels)).toBe(expected);
  });
});

describe('validateLabelSelector', () => {
  it('checks operators and values', () => {
    const path = FieldPath.root('spec', 'selector');
    expect(
      validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, path),
    ).toEqual([]);
    expect(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In' }] }, path)).toEqual([
      expect.objectContaining({
        field: 'spec.selector.matchExpressions[0].values',
        type: 'FieldValueRequired',
      }),
    ]);
    expect(
      validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, path),
    ).toEqual([
      expect.objectContaining({
        field: 'spec.selector.matchExpressions[0].values',
        type: 'FieldValueInvalid',
      }),
    ]);
  });
});
