// The patch generator is checked against an independent RFC 6902 implementation (fast-json-patch applies what we
// produce), on hand-written cases and on arbitrary JSON.
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { changedPaths, createPatch, jsonEqual } from './json.ts';

// fast-json-patch (the oracle) refuses, by design, any path through `__proto__` or `constructor/prototype`, and
// fast-check generates such keys on purpose now and then; the API server never sends them (field names are schema-
// checked, label and annotation keys must start with an alphanumeric), so arbitrary documents leave them out.
const BANNED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const withoutBannedKeys = (v: unknown): boolean =>
  Array.isArray(v)
    ? v.every(withoutBannedKeys)
    : typeof v === 'object' && v !== null
      ? Object.entries(v).every(([k, x]) => !BANNED_KEYS.has(k) && withoutBannedKeys(x))
      : true;
const arbitraryJson = fc
  .jsonValue({ maxDepth: 4 })
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter(withoutBannedKeys);

const apply = (doc: unknown, ops: ReturnType<typeof createPatch>): unknown =>
  jsonPatch.applyPatch(structuredClone(doc), ops as jsonPatch.Operation[], true, false).newDocument;

describe('createPatch', () => {
  it('adds, replaces and removes fields, escaping ~ and / in keys', () => {
    const before = { metadata: { labels: { 'kubevirt.io/a': '1', 'x~y': '2' } }, spec: { a: 1 } };
    const after = {
      metadata: { labels: { 'kubevirt.io/a': '9' }, finalizers: ['f'] },
      spec: { a: 1, b: true },
    };
    const ops = createPatch(before, after);
    expect(ops).toEqual([
      { op: 'remove', path: '/metadata/labels/x~0y' },
      { op: 'replace', path: '/metadata/labels/kubevirt.io~1a', value: '9' },
      { op: 'add', path: '/metadata/finalizers', value: ['f'] },
      { op: 'add', path: '/spec/b', value: true },
    ]);
    expect(apply(before, ops)).toEqual(after);
  });

  it('appends to lists with /- and replaces a list that shrank', () => {
    expect(createPatch({ f: ['a'] }, { f: ['a', 'b'] })).toEqual([{ op: 'add', path: '/f/-', value: 'b' }]);
    expect(createPatch({ f: ['a', 'b'] }, { f: ['b'] })).toEqual([
      { op: 'replace', path: '/f', value: ['b'] },
    ]);
    expect(createPatch({ a: 1 }, { a: 1 })).toEqual([]);
  });

  it('treats undefined properties as absent', () => {
    expect(createPatch({ a: 1, b: undefined }, { a: 1 })).toEqual([]);
    expect(jsonEqual({ a: undefined }, {})).toBe(true);
  });

  it('turns any JSON document into any other', () => {
    fc.assert(
      fc.property(arbitraryJson, arbitraryJson, (a, b) => {
        expect(apply(a, createPatch(a, b))).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });

  it('yields an empty patch exactly when the documents are equal', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (a) => {
        const copy = JSON.parse(JSON.stringify(a)) as unknown;
        expect(createPatch(copy, structuredClone(copy))).toEqual([]);
      }),
    );
  });
});

describe('changedPaths', () => {
  it('names the deepest changed fields in Kubernetes notation', () => {
    const before = { domain: { cpu: { cores: 1 }, devices: { disks: [{ name: 'a' }, { name: 'b' }] } } };
    const after = { domain: { cpu: { cores: 2 }, devices: { disks: [{ name: 'a' }, { name: 'c' }] } } };
    expect(changedPaths(before, after, 'spec')).toEqual([
      'spec.domain.cpu.cores',
      'spec.domain.devices.disks[1].name',
    ]);
    expect(changedPaths({ l: [1] }, { l: [1, 2] }, 'spec')).toEqual(['spec.l']);
    expect(changedPaths({ m: { 'a/b': 1 } }, { m: { 'a/b': 2 } }, 'metadata')).toEqual(['metadata.m[a/b]']);
  });

  it('stops at the limit', () => {
    const a = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    const b = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i + 1]));
    expect(changedPaths(a, b, 'spec', 5)).toHaveLength(5);
  });
});
