// What the handler does to a domain, from cached state alone (reference §3.4, §4.3).
import { describe, expect, it } from 'vitest';
import { domain, ready, vmiIn } from '../test/unit-fixtures.ts';
import { decide, shutdownDeadline } from './decide.ts';

const NOW = Date.parse('2026-01-01T00:10:00Z');

describe('decide', () => {
  it('syncs a Scheduled or Running VMI whose domain should run', () => {
    expect(decide({ vmi: vmiIn('Scheduled'), launcher: ready(undefined), now: NOW }).kind).toBe('sync');
    expect(decide({ vmi: vmiIn('Running'), launcher: ready(domain('Running')), now: NOW }).kind).toBe('sync');
    expect(decide({ vmi: vmiIn('Running'), launcher: ready(domain('Paused', 'User')), now: NOW }).kind).toBe(
      'sync',
    );
  });

  it('waits for a launcher that is still starting, and for its first answer', () => {
    const starting = decide({
      vmi: vmiIn('Scheduled'),
      launcher: { state: 'initializing', domainKnown: false, domain: undefined },
      now: NOW,
    });
    expect(starting).toMatchObject({ kind: 'wait' });
    expect(
      decide({
        vmi: vmiIn('Scheduled'),
        launcher: { state: 'ready', domainKnown: false, domain: undefined },
        now: NOW,
      }).kind,
    ).toBe('wait');
  });

  it('does not restart a guest that stopped, and does not sync a crashed one', () => {
    expect(
      decide({ vmi: vmiIn('Running'), launcher: ready(domain('Shutoff', 'Shutdown')), now: NOW }).kind,
    ).toBe('none');
    expect(
      decide({ vmi: vmiIn('Running'), launcher: ready(domain('Crashed', 'Panicked')), now: NOW }).kind,
    ).toBe('none');
  });

  it('shuts a deleted VMI down with its grace period', () => {
    const a = decide({
      vmi: vmiIn('Running', { deleting: true, grace: 45 }),
      launcher: ready(domain('Running')),
      now: NOW,
    });
    expect(a).toMatchObject({ kind: 'shutdown', graceSeconds: 45 });
  });

  it('shuts down with the recorded grace period when the VMI is gone altogether', () => {
    const a = decide({ vmi: undefined, launcher: ready(domain('Running')), now: NOW });
    expect(a).toMatchObject({ kind: 'shutdown', graceSeconds: undefined });
  });

  it('shuts down when the launcher reports that its pod is going away (SIGTERM)', () => {
    const a = decide({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Running', 'Booted', { markedForGracefulShutdown: true })),
      now: NOW,
    });
    expect(a.kind).toBe('shutdown');
  });

  it('waits while a shutdown is within its grace period, then kills', () => {
    const shuttingDown = domain('Running', 'Booted', { shutdownAt: '2026-01-01T00:09:50Z', grace: 30 });
    const waiting = decide({
      vmi: vmiIn('Running', { deleting: true }),
      launcher: ready(shuttingDown),
      now: NOW,
    });
    expect(waiting).toMatchObject({ kind: 'wait' });
    expect((waiting as { afterMs: number }).afterMs).toBeLessThanOrEqual(5_000);
    const late = decide({
      vmi: vmiIn('Running', { deleting: true }),
      launcher: ready(shuttingDown),
      now: Date.parse('2026-01-01T00:10:21Z'),
    });
    expect(late.kind).toBe('kill');
  });

  it('does not sync a domain whose shutdown began (e.g. before a handler restart)', () => {
    const a = decide({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Running', 'Booted', { shutdownAt: '2026-01-01T00:09:50Z' })),
      now: NOW,
    });
    expect(a.kind).toBe('wait');
  });

  it('moves the VMI to its final phase before it deletes the domain of a deleted VMI', () => {
    expect(
      decide({
        vmi: vmiIn('Running', { deleting: true }),
        launcher: ready(domain('Shutoff', 'Shutdown')),
        now: NOW,
      }).kind,
    ).toBe('none');
    expect(
      decide({
        vmi: vmiIn('Succeeded', { deleting: true }),
        launcher: ready(domain('Shutoff', 'Shutdown')),
        now: NOW,
      }).kind,
    ).toBe('delete');
  });

  it('deletes the domain of a final VMI, and forgets the launcher once no domain is left', () => {
    expect(
      decide({ vmi: vmiIn('Failed'), launcher: ready(domain('Shutoff', 'Crashed')), now: NOW }).kind,
    ).toBe('delete');
    expect(decide({ vmi: vmiIn('Failed'), launcher: ready(undefined), now: NOW }).kind).toBe('forget');
    expect(
      decide({
        vmi: vmiIn('Succeeded'),
        launcher: ready(domain('Shutoff', 'Shutdown', { deleted: true })),
        now: NOW,
      }).kind,
    ).toBe('forget');
  });

  it('shuts down the still-running domain of a final VMI', () => {
    expect(decide({ vmi: vmiIn('Failed'), launcher: ready(domain('Running')), now: NOW }).kind).toBe(
      'shutdown',
    );
  });

  it('forgets a launcher whose pod is gone', () => {
    expect(
      decide({
        vmi: vmiIn('Running'),
        launcher: { state: 'gone', domainKnown: true, domain: domain('Running') },
        now: NOW,
      }).kind,
    ).toBe('forget');
  });

  it('keeps an unresponsive launcher until its VMI is final, then forgets it', () => {
    const unresponsive = { state: 'unresponsive' as const, domainKnown: true, domain: domain('Running') };
    expect(decide({ vmi: vmiIn('Running'), launcher: unresponsive, now: NOW }).kind).toBe('none');
    expect(decide({ vmi: vmiIn('Failed'), launcher: unresponsive, now: NOW }).kind).toBe('forget');
  });

  it('leaves VMIs in the controller’s phases alone', () => {
    expect(decide({ vmi: vmiIn('Scheduling'), launcher: ready(undefined), now: NOW }).kind).toBe('none');
  });
});

describe('shutdownDeadline', () => {
  it('is the recorded start plus the grace period', () => {
    expect(
      shutdownDeadline(domain('Running', 'Booted', { shutdownAt: '2026-01-01T00:00:00Z', grace: 30 })),
    ).toBe(Date.parse('2026-01-01T00:00:30Z'));
  });
  it('is undefined before a shutdown began', () => {
    expect(shutdownDeadline(domain('Running'))).toBeUndefined();
  });
});
