// Reading the domain JSON a launcher sends.
import { describe, expect, it } from 'vitest';
import { DomainParseError, isDomainActive, parseDomain, parseGuestInfo } from './domain.ts';

// What packages/launcher sends (its DomainJson), field for field.
const fromLauncher = {
  kind: 'Domain',
  apiVersion: 'kubevirt.io/v1',
  metadata: { name: 'vm1', namespace: 'ns1', uid: 'u1' },
  spec: {
    name: 'ns1_vm1',
    metadata: {
      kubevirt: {
        uid: 'u1',
        graceperiod: {
          deletionGracePeriodSeconds: 30,
          deletionTimestamp: '2026-01-01T00:00:00.000Z',
          markedForGracefulShutdown: true,
        },
      },
    },
  },
  status: { status: 'Running', reason: 'Booted', guestAgentConnected: true },
};

describe('parseDomain', () => {
  it('reads the launcher’s domain JSON', () => {
    expect(parseDomain(JSON.stringify(fromLauncher))).toEqual({
      metadata: { name: 'vm1', namespace: 'ns1', uid: 'u1', deletionTimestamp: undefined },
      spec: {
        name: 'ns1_vm1',
        gracePeriod: {
          deletionGracePeriodSeconds: 30,
          deletionTimestamp: '2026-01-01T00:00:00.000Z',
          markedForGracefulShutdown: true,
        },
      },
      status: { status: 'Running', reason: 'Booted', guestAgentConnected: true, interfaces: undefined },
    });
  });

  it('refuses what is not a domain, saying why', () => {
    expect(() => parseDomain('nope')).toThrow(DomainParseError);
    expect(() => parseDomain('{}')).toThrow(/metadata.name and metadata.uid/);
    expect(() => parseDomain(JSON.stringify({ ...fromLauncher, status: { status: 'Exploded' } }))).toThrow(
      /no known status.status/,
    );
  });

  it('tells active states from inactive ones', () => {
    const d = parseDomain(JSON.stringify(fromLauncher));
    expect(isDomainActive(d)).toBe(true);
    expect(isDomainActive({ ...d, status: { ...d.status, status: 'Shutoff' } })).toBe(false);
    expect(isDomainActive({ ...d, status: { ...d.status, status: 'Crashed' } })).toBe(true);
    expect(isDomainActive(undefined)).toBe(false);
  });
});

describe('parseGuestInfo', () => {
  it('reads guest agent info and ignores what is not JSON', () => {
    expect(parseGuestInfo(Buffer.from('{"os":{"name":"busybox"}}'))).toEqual({ os: { name: 'busybox' } });
    expect(parseGuestInfo(Buffer.alloc(0))).toBeUndefined();
    expect(parseGuestInfo(Buffer.from('{'))).toBeUndefined();
  });
});
