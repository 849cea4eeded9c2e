import { describe, expect, it } from 'vitest';
import { domainStatusOf, lifecycleEventOf, readTypedParams } from './client.ts';
import { XdrError, XdrReader, XdrWriter } from './xdr.ts';

describe('XDR', () => {
  it('round-trips the shapes libvirt uses, padding opaques and strings to 4 bytes', () => {
    const uuid = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    const bytes = new XdrWriter()
      .int(-2)
      .uint(0xfffffffe)
      .hyper(-5n)
      .uhyper(2n ** 63n)
      .bool(true)
      .string('héllo')
      .optionalString(undefined)
      .optionalString('x')
      .fixedOpaque(uuid)
      .toBuffer();
    // 4 + 4 + 8 + 8 + 4 + (4 + 6 + 2 pad) + 4 + (4 + 4 + 1 + 3 pad) + 16 = 72
    expect(bytes.length).toBe(72);
    const r = new XdrReader(bytes);
    expect([r.int(), r.uint(), r.hyper(), r.uhyper(), r.bool(), r.string()]).toEqual([
      -2,
      0xfffffffe,
      -5n,
      2n ** 63n,
      true,
      'héllo',
    ]);
    expect(r.optional(() => r.string())).toBeUndefined();
    expect(r.optional(() => r.string())).toBe('x');
    expect(r.fixedOpaque(16)).toEqual(uuid);
    expect(r.remaining).toBe(0);
  });

  it('refuses to read past the end or to allocate an impossible array', () => {
    expect(() => new XdrReader(Buffer.alloc(2)).int()).toThrow(XdrError);
    expect(() => new XdrReader(new XdrWriter().uint(1_000_000).toBuffer()).array(() => 0)).toThrow(
      /array of 1000000 items/,
    );
  });
});

describe('libvirt values', () => {
  it('decodes typed parameters of every type', () => {
    const w = new XdrWriter().uint(7);
    w.string('i').int(1).int(-3);
    w.string('ui').int(2).uint(7);
    w.string('l').int(3).hyper(-9n);
    w.string('ul')
      .int(4)
      .uhyper(2n ** 40n);
    w.string('d').int(5);
    const d = Buffer.alloc(8);
    d.writeDoubleBE(1.5);
    w.fixedOpaque(d);
    w.string('b').int(6).int(1);
    w.string('s').int(7).string('text');
    expect(readTypedParams(new XdrReader(w.toBuffer()))).toEqual({
      i: -3,
      ui: 7,
      l: -9,
      ul: 2 ** 40,
      d: 1.5,
      b: true,
      s: 'text',
    });
  });

  it("names states, reasons and events as KubeVirt's domain status does", () => {
    expect(domainStatusOf(1, 1)).toEqual({ state: 'Running', reason: 'Booted' });
    expect(domainStatusOf(3, 1)).toEqual({ state: 'Paused', reason: 'User' });
    expect(domainStatusOf(5, 1)).toEqual({ state: 'Shutoff', reason: 'Shutdown' });
    expect(domainStatusOf(5, 3)).toEqual({ state: 'Shutoff', reason: 'Crashed' });
    expect(domainStatusOf(6, 1)).toEqual({ state: 'Crashed', reason: 'Panicked' });
    expect(domainStatusOf(4, 0)).toEqual({ state: 'ShuttingDown', reason: 'Unknown' });
    expect(domainStatusOf(42, 7)).toEqual({ state: 'NoState', reason: 'Unknown' });
    expect(lifecycleEventOf(5, 1)).toEqual({ event: 'Stopped', detail: 'Destroyed' });
    expect(lifecycleEventOf(8, 0)).toEqual({ event: 'Crashed', detail: 'Panicked' });
    expect(lifecycleEventOf(99, 0)).toEqual({ event: 'Event99', detail: 'Detail0' });
  });
});
