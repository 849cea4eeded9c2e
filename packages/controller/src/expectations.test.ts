import { describe, expect, it } from 'vitest';
import { Expectations } from './expectations.ts';

describe('Expectations', () => {
  it('holds a key until each expected create is observed', () => {
    const e = new Expectations();
    expect(e.satisfied('ns/a')).toBe(true);
    e.expectCreations('ns/a', 2);
    expect(e.satisfied('ns/a')).toBe(false);
    expect(e.pendingCreations('ns/a')).toBe(2);
    e.creationObserved('ns/a');
    expect(e.satisfied('ns/a')).toBe(false);
    e.creationObserved('ns/a');
    expect(e.satisfied('ns/a')).toBe(true);
    e.creationObserved('ns/a');
    expect(e.pendingCreations('ns/a')).toBe(0);
  });

  it('tracks deletions by child key, so observing another child does not count', () => {
    const e = new Expectations();
    e.expectDeletions('ns/rs', ['ns/x', 'ns/y']);
    e.deletionObserved('ns/rs', 'ns/z');
    expect(e.pendingDeletions('ns/rs')).toBe(2);
    e.deletionObserved('ns/rs', 'ns/x');
    e.deletionObserved('ns/rs', 'ns/x');
    expect(e.satisfied('ns/rs')).toBe(false);
    e.deletionObserved('ns/rs', 'ns/y');
    expect(e.satisfied('ns/rs')).toBe(true);
  });

  it('waits until the cache moved past the version a write replaced', () => {
    const e = new Expectations();
    e.expectNewerVersion('ns/vm', '10');
    e.versionObserved('ns/vm', '10');
    expect(e.satisfied('ns/vm')).toBe(false);
    e.versionObserved('ns/vm', '11');
    expect(e.satisfied('ns/vm')).toBe(true);
  });

  it('asks the cache too: the event of our own write may come before its response', () => {
    const e = new Expectations();
    e.versionObserved('ns/vm', '11');
    e.expectNewerVersion('ns/vm', '10');
    expect(e.satisfied('ns/vm', '10')).toBe(false);
    expect(e.satisfied('ns/vm', '11')).toBe(true);
  });

  it('gives up after the TTL, so a lost watch event cannot block a key for ever', () => {
    let now = 1000;
    const e = new Expectations({ ttlMs: 500, now: () => now });
    e.expectCreations('ns/a', 1);
    expect(e.remainingMs('ns/a')).toBe(500);
    now += 499;
    expect(e.satisfied('ns/a')).toBe(false);
    now += 2;
    expect(e.satisfied('ns/a')).toBe(true);
    expect(e.pendingCreations('ns/a')).toBe(0);
  });
});
