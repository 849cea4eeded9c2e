// The handler's VMI status as a pure function: the phase table of reference §2.1, the conditions it owns, and the
// "write only when something changed" rule.
import { describe, expect, it } from 'vitest';
import { domain, ready, vmiIn } from '../test/unit-fixtures.ts';
import { calculatePhase, nextStatus, type LauncherObservation } from './status.ts';
import type { Phase } from './vmi.ts';

const NOW = new Date('2026-02-03T04:05:06.789Z');

describe('calculatePhase', () => {
  const cases: [string, Phase, LauncherObservation, Phase, string | undefined][] = [
    ['running domain → Running', 'Scheduled', ready(domain('Running', 'Booted')), 'Running', undefined],
    ['paused domain stays Running', 'Running', ready(domain('Paused', 'User')), 'Running', undefined],
    ['blocked domain → Running', 'Scheduled', ready(domain('Blocked')), 'Running', undefined],
    ['no domain yet keeps Scheduled', 'Scheduled', ready(undefined), 'Scheduled', undefined],
    [
      'never-started domain keeps Scheduled',
      'Scheduled',
      ready(domain('Shutoff', 'Unknown')),
      'Scheduled',
      undefined,
    ],
    [
      'guest powered off → Succeeded',
      'Running',
      ready(domain('Shutoff', 'Shutdown')),
      'Succeeded',
      undefined,
    ],
    ['saved → Succeeded', 'Running', ready(domain('Shutoff', 'Saved')), 'Succeeded', undefined],
    ['QEMU died → Failed', 'Running', ready(domain('Shutoff', 'Crashed')), 'Failed', 'GuestCrashed'],
    ['QEMU failed → Failed', 'Running', ready(domain('Shutoff', 'Failed')), 'Failed', 'GuestCrashed'],
    ['panicked → Failed', 'Running', ready(domain('Crashed', 'Panicked')), 'Failed', 'GuestPanicked'],
    [
      'postcopy failure → Failed',
      'Running',
      ready(domain('Paused', 'PostcopyFailed')),
      'Failed',
      'PostcopyFailed',
    ],
    ['domain vanished while running → Failed', 'Running', ready(undefined), 'Failed', 'DomainDisappeared'],
    [
      'domain deleted while running → Failed',
      'Running',
      ready(domain('Running', 'Booted', { deleted: true })),
      'Failed',
      'DomainDisappeared',
    ],
    [
      'final event of a powered-off guest → Succeeded',
      'Running',
      ready(domain('Shutoff', 'Shutdown', { deleted: true })),
      'Succeeded',
      undefined,
    ],
    [
      'unresponsive launcher → Failed',
      'Running',
      { state: 'unresponsive', domainKnown: true, domain: domain('Running') },
      'Failed',
      'LauncherUnresponsive',
    ],
    [
      'launcher pod gone → Failed',
      'Scheduled',
      { state: 'gone', domainKnown: false, domain: undefined },
      'Failed',
      'LauncherGone',
    ],
    [
      'launcher still starting keeps Scheduled',
      'Scheduled',
      { state: 'initializing', domainKnown: false, domain: undefined },
      'Scheduled',
      undefined,
    ],
    [
      'unknown domain state keeps the phase',
      'Running',
      { state: 'ready', domainKnown: false, domain: undefined },
      'Running',
      undefined,
    ],
    ['migrated keeps the phase', 'Running', ready(domain('Shutoff', 'Migrated')), 'Running', undefined],
    ['a final VMI stays final', 'Succeeded', ready(domain('Running')), 'Succeeded', undefined],
    [
      'the controller’s phases are left alone',
      'Scheduling',
      ready(domain('Running')),
      'Scheduling',
      undefined,
    ],
  ];
  it.each(cases)('%s', (_name, from, launcher, phase, reason) => {
    const d = calculatePhase(vmiIn(from), launcher);
    expect(d.phase).toBe(phase);
    expect(d.reason).toBe(reason);
  });

  describe('a destroyed domain', () => {
    it('is Failed when ACPI and a grace period were available (the guest ignored the shutdown)', () => {
      const d = calculatePhase(
        vmiIn('Running'),
        ready(domain('Shutoff', 'Destroyed', { shutdownAt: '2026-01-01T00:00:00Z', grace: 30 })),
      );
      expect(d).toMatchObject({ phase: 'Failed', reason: 'GuestShutdownTimedOut' });
    });
    it('is Succeeded when the shutdown had no grace period', () => {
      const d = calculatePhase(
        vmiIn('Running'),
        ready(domain('Shutoff', 'Destroyed', { shutdownAt: '2026-01-01T00:00:00Z', grace: 0 })),
      );
      expect(d.phase).toBe('Succeeded');
    });
    it('is Succeeded when ACPI is off', () => {
      const d = calculatePhase(vmiIn('Running', { acpi: false }), ready(domain('Shutoff', 'Destroyed')));
      expect(d.phase).toBe('Succeeded');
    });
    it('uses the VMI grace period when no shutdown was recorded', () => {
      expect(
        calculatePhase(vmiIn('Running', { grace: 0 }), ready(domain('Shutoff', 'Destroyed'))).phase,
      ).toBe('Succeeded');
      expect(
        calculatePhase(vmiIn('Running', { grace: 5 }), ready(domain('Shutoff', 'Destroyed'))).phase,
      ).toBe('Failed');
    });
  });
});

describe('nextStatus', () => {
  it('moves Scheduled to Running with a transition timestamp and a Started event', () => {
    const r = nextStatus({ vmi: vmiIn('Scheduled'), launcher: ready(domain('Running', 'Booted')), now: NOW });
    expect(r.changed).toBe(true);
    expect(r.vmi.status?.phase).toBe('Running');
    expect(r.vmi.status?.phaseTransitionTimestamps).toEqual([
      { phase: 'Scheduled', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' },
      { phase: 'Running', phaseTransitionTimestamp: '2026-02-03T04:05:06Z' },
    ]);
    expect(r.events).toEqual([
      { type: 'Normal', reason: 'Started', message: 'VirtualMachineInstance started.' },
    ]);
  });

  it('does not modify its input', () => {
    const vmi = vmiIn('Scheduled');
    const before = JSON.stringify(vmi);
    nextStatus({ vmi, launcher: ready(domain('Running', 'Booted', { agent: true })), now: NOW });
    expect(JSON.stringify(vmi)).toBe(before);
  });

  it('reports no change, and no events, when the status already says it all', () => {
    const first = nextStatus({
      vmi: vmiIn('Scheduled'),
      launcher: ready(domain('Running', 'Booted', { agent: true })),
      now: NOW,
    });
    const again = nextStatus({
      vmi: first.vmi,
      launcher: ready(domain('Running', 'Booted', { agent: true })),
      now: new Date(NOW.getTime() + 60_000),
    });
    expect(again.changed).toBe(false);
    expect(again.events).toEqual([]);
    expect(again.vmi).toEqual(first.vmi);
  });

  it('sets Paused=True (PausedByUser) while the domain is paused by a user and removes it on resume', () => {
    const paused = nextStatus({ vmi: vmiIn('Running'), launcher: ready(domain('Paused', 'User')), now: NOW });
    expect(paused.vmi.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Paused', status: 'True', reason: 'PausedByUser' }),
    );
    const resumed = nextStatus({ vmi: paused.vmi, launcher: ready(domain('Running', 'Unpaused')), now: NOW });
    expect(resumed.changed).toBe(true);
    expect(resumed.vmi.status?.conditions?.map((c) => c.type)).not.toContain('Paused');
  });

  it('reports an I/O error pause as PausedIOError', () => {
    const r = nextStatus({ vmi: vmiIn('Running'), launcher: ready(domain('Paused', 'IOError')), now: NOW });
    expect(r.vmi.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Paused', reason: 'PausedIOError' }),
    );
  });

  it('sets AgentConnected while the guest agent is connected and takes guestOSInfo from it', () => {
    const r = nextStatus({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Running', 'Booted', { agent: true }), {
        guestInfo: {
          os: { name: 'Debian', prettyName: 'Debian GNU/Linux 12', versionId: '12', kernelRelease: '' },
        },
      }),
      now: NOW,
    });
    expect(r.vmi.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'AgentConnected', status: 'True' }),
    );
    // Empty strings are what an agent reports for fields it does not know; they are left out.
    expect(r.vmi.status?.guestOSInfo).toEqual({
      name: 'Debian',
      prettyName: 'Debian GNU/Linux 12',
      versionId: '12',
    });
    const gone = nextStatus({
      vmi: r.vmi,
      launcher: ready(domain('Running', 'Booted', { agent: false })),
      now: NOW,
    });
    expect(gone.vmi.status?.conditions?.map((c) => c.type)).not.toContain('AgentConnected');
    expect(gone.vmi.status?.guestOSInfo).toEqual(r.vmi.status?.guestOSInfo);
  });

  it('sets Synchronized=False with the error while Sync fails and removes it when Sync works again', () => {
    const failing = nextStatus({
      vmi: vmiIn('Scheduled'),
      launcher: ready(undefined),
      syncError: 'disk rootdisk: image not found',
      now: NOW,
    });
    expect(failing.vmi.status?.conditions).toContainEqual(
      expect.objectContaining({
        type: 'Synchronized',
        status: 'False',
        reason: 'Synchronizing with the Domain failed.',
        message: 'disk rootdisk: image not found',
      }),
    );
    const same = nextStatus({
      vmi: failing.vmi,
      launcher: ready(undefined),
      syncError: 'disk rootdisk: image not found',
      now: new Date(NOW.getTime() + 5_000),
    });
    expect(same.changed).toBe(false);
    const fixed = nextStatus({ vmi: failing.vmi, launcher: ready(domain('Running')), now: NOW });
    expect(fixed.vmi.status?.conditions?.map((c) => c.type)).not.toContain('Synchronized');
  });

  it('merges interfaces from the domain with what the guest agent reports for the same MAC', () => {
    const d = domain('Running');
    d.status.interfaces = [{ name: 'default', mac: '52:54:00:aa:bb:cc', ip: '10.0.2.2' }];
    const r = nextStatus({
      vmi: vmiIn('Running'),
      launcher: ready(d, {
        guestInfo: {
          interfaces: [
            {
              mac: '52:54:00:AA:BB:CC',
              ip: '10.0.2.15',
              ips: ['10.0.2.15', 'fd00::2'],
              interfaceName: 'eth0',
            },
            { mac: '52:54:00:11:22:33', ip: '192.168.0.2', interfaceName: 'eth1' },
          ],
        },
      }),
      now: NOW,
    });
    expect(r.vmi.status?.interfaces).toEqual([
      {
        name: 'default',
        mac: '52:54:00:aa:bb:cc',
        ipAddress: '10.0.2.15',
        ipAddresses: ['10.0.2.15', 'fd00::2'],
        interfaceName: 'eth0',
        infoSource: 'domain, guest-agent',
      },
      {
        mac: '52:54:00:11:22:33',
        ipAddress: '192.168.0.2',
        interfaceName: 'eth1',
        infoSource: 'guest-agent',
      },
    ]);
  });

  it('reports the pod IP for a masquerade interface, and takes only the interface name from the guest agent', () => {
    const podNetwork = { name: 'default', mac: '52:54:00:aa:bb:cc', podIPs: ['10.244.1.7'] };
    const alone = nextStatus({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Running'), { podNetwork }),
      now: NOW,
    });
    expect(alone.vmi.status?.interfaces).toEqual([
      {
        name: 'default',
        mac: '52:54:00:aa:bb:cc',
        ipAddress: '10.244.1.7',
        ipAddresses: ['10.244.1.7'],
        podInterfaceName: 'eth0',
        infoSource: 'domain',
      },
    ]);
    const withAgent = nextStatus({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Running'), {
        podNetwork,
        guestInfo: {
          interfaces: [
            { mac: '52:54:00:AA:BB:CC', ip: '10.0.2.2', ips: ['10.0.2.2'], interfaceName: 'eth0' },
          ],
        },
      }),
      now: NOW,
    });
    expect(withAgent.vmi.status?.interfaces?.[0]).toMatchObject({
      ipAddress: '10.244.1.7',
      ipAddresses: ['10.244.1.7'],
      interfaceName: 'eth0',
      infoSource: 'domain, guest-agent',
    });
  });

  it('leaves interfaces alone when neither the domain nor the agent reports any', () => {
    const vmi = vmiIn('Running');
    vmi.status!.interfaces = [{ name: 'default', ipAddress: '10.244.1.5' }];
    const r = nextStatus({ vmi, launcher: ready(domain('Running')), now: NOW });
    expect(r.changed).toBe(false);
    expect(r.vmi.status?.interfaces).toEqual([{ name: 'default', ipAddress: '10.244.1.5' }]);
  });

  it('on a crash: Failed with a reason, Ready=False, no Paused/AgentConnected, and a Warning event', () => {
    const running = nextStatus({
      vmi: vmiIn('Running'),
      launcher: ready(domain('Paused', 'User', { agent: true })),
      now: NOW,
    }).vmi;
    const r = nextStatus({ vmi: running, launcher: ready(domain('Shutoff', 'Crashed')), now: NOW });
    expect(r.vmi.status?.phase).toBe('Failed');
    expect(r.vmi.status?.reason).toBe('GuestCrashed');
    const types = r.vmi.status?.conditions?.map((c) => `${c.type}=${c.status}`);
    expect(types).toContain('Ready=False');
    expect(types).not.toContain('Paused=True');
    expect(types).not.toContain('AgentConnected=True');
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ type: 'Warning', reason: 'Stopped' });
    expect(r.events[0]?.message).toMatch(/crashed.*GuestCrashed/);
  });

  it('on a guest shutdown: Succeeded with a Normal event and no status.reason', () => {
    const r = nextStatus({ vmi: vmiIn('Running'), launcher: ready(domain('Shutoff', 'Shutdown')), now: NOW });
    expect(r.vmi.status?.phase).toBe('Succeeded');
    expect(r.vmi.status?.reason).toBeUndefined();
    expect(r.events).toEqual([
      { type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' },
    ]);
  });

  it('keeps a Ready=False the controller set on a final VMI', () => {
    const vmi = vmiIn('Failed');
    vmi.status!.conditions = [
      {
        type: 'Ready',
        status: 'False',
        reason: 'PodTerminating',
        message: 'virt-launcher pod is terminating',
      },
    ];
    const r = nextStatus({ vmi, launcher: ready(undefined), now: NOW });
    expect(r.changed).toBe(false);
  });

  it('never touches fields the controller owns', () => {
    const vmi = vmiIn('Scheduled');
    vmi.status!.launcherContainerImageVersion = 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0';
    vmi.status!.qosClass = 'Burstable';
    const r = nextStatus({ vmi, launcher: ready(domain('Running')), now: NOW });
    expect(r.vmi.status?.launcherContainerImageVersion).toBe('ghcr.io/kubevirt-ts/virt-launcher:0.1.0');
    expect(r.vmi.status?.qosClass).toBe('Burstable');
    expect(r.vmi.status?.activePods).toEqual(vmi.status?.activePods);
    expect(r.vmi.status?.conditions?.find((c) => c.type === 'Ready')).toEqual(
      vmi.status?.conditions?.find((c) => c.type === 'Ready'),
    );
  });
});
