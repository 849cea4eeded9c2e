import { describe, expect, it } from 'vitest';
import { pickVersion } from './versions.ts';

describe('pickVersion', () => {
  it('picks the highest version both sides speak', () => {
    expect(pickVersion(['v1'], ['v1', 'v2'])).toBe('v1');
    expect(pickVersion(['v1', 'v2'], ['v1'])).toBe('v1');
    expect(pickVersion(['v1', 'v2', 'v3'], ['v2', 'v3', 'v4'])).toBe('v3');
  });

  it('compares versions by number, not as text', () => {
    expect(pickVersion(['v9', 'v10'], ['v10', 'v9'])).toBe('v10');
  });

  it('returns undefined when nothing is common', () => {
    expect(pickVersion(['v2'], ['v1'])).toBeUndefined();
    expect(pickVersion(['v1'], [])).toBeUndefined();
  });

  it('ignores server versions it cannot order and rejects malformed client versions', () => {
    expect(pickVersion(['v1'], ['v1', 'v2alpha1'])).toBe('v1');
    expect(() => pickVersion(['1'], ['1'])).toThrow(/v<N>/);
  });
});
