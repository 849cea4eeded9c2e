// The domain manager's rules against an in-memory Hypervisor (the integration tests run them against libvirt):
// when Sync starts a domain, the graceful-shutdown deadline and its survival across a launcher restart, identity,
// and reconnecting after the daemon went away.
import { silentLogger } from '@kubevirt-ts/runtime/logger';
import { describe, expect, it } from 'vitest';
import type { DomainStatus, Hypervisor, HypervisorEvent, TypedParams } from './hypervisor.ts';
import { CommandError, DomainManager } from './manager.ts';
import type { DomainEventType } from './manager.ts';
import type { DomainJson } from './domain.ts';
import type { VirtualMachineInstance } from './vmi.ts';

interface FakeDomain {
  xml: string;
  status: DomainStatus;
  metadata?: string;
}

/** One libvirt daemon's worth of state; each connect() is a new connection to it. */
class FakeLibvirt {
  readonly domains = new Map<string, FakeDomain>();
  readonly calls: string[] = [];
  /** Whether the guest powers off when asked through ACPI. */
  honoursAcpi = true;
  private connections: FakeConnection[] = [];

  connect = (): Promise<Hypervisor> => {
    const c = new FakeConnection(this);
    this.connections.push(c);
    return Promise.resolve(c);
  };

  emit(event: HypervisorEvent): void {
    for (const c of this.connections) c.emit(event);
  }

  /** The daemon dies: every open connection drops. */
  crash(): void {
    for (const c of this.connections.splice(0)) c.drop(new Error('daemon died'));
  }
}

class FakeConnection implements Hypervisor {
  private readonly listeners = new Set<(e: HypervisorEvent) => void>();
  private readonly disconnects = new Set<(e: Error) => void>();
  private readonly lv: FakeLibvirt;

  constructor(lv: FakeLibvirt) {
    this.lv = lv;
  }

  emit(e: HypervisorEvent): void {
    for (const l of this.listeners) l(e);
  }

  drop(error: Error): void {
    for (const l of this.disconnects) l(error);
  }

  private domain(name: string): FakeDomain {
    const d = this.lv.domains.get(name);
    if (!d) throw new Error(`no domain ${name}`);
    return d;
  }

  private set(name: string, status: DomainStatus, event: string, detail: string): void {
    this.domain(name).status = status;
    this.lv.emit({ kind: 'lifecycle', domain: name, event, detail });
  }

  defineDomain(xml: string): Promise<void> {
    const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1] as string;
    this.lv.calls.push(`define ${name}`);
    const existing = this.lv.domains.get(name);
    this.lv.domains.set(name, { xml, status: existing?.status ?? { state: 'Shutoff', reason: 'Unknown' } });
    return Promise.resolve();
  }
  domainStatus(name: string): Promise<DomainStatus | undefined> {
    return Promise.resolve(this.lv.domains.get(name)?.status);
  }
  domainXml(name: string): Promise<string> {
    return Promise.resolve(this.domain(name).xml);
  }
  start(name: string, options: { paused?: boolean } = {}): Promise<void> {
    this.lv.calls.push(`start ${name}${options.paused === true ? ' paused' : ''}`);
    if (options.paused === true) this.set(name, { state: 'Paused', reason: 'User' }, 'Suspended', 'Paused');
    else this.set(name, { state: 'Running', reason: 'Booted' }, 'Started', 'Booted');
    return Promise.resolve();
  }
  pause(name: string): Promise<void> {
    this.set(name, { state: 'Paused', reason: 'User' }, 'Suspended', 'Paused');
    return Promise.resolve();
  }
  resume(name: string): Promise<void> {
    this.set(name, { state: 'Running', reason: 'Unpaused' }, 'Resumed', 'Unpaused');
    return Promise.resolve();
  }
  shutdown(name: string): Promise<void> {
    this.lv.calls.push(`acpi ${name}`);
    if (this.lv.honoursAcpi) this.set(name, { state: 'Shutoff', reason: 'Shutdown' }, 'Stopped', 'Shutdown');
    return Promise.resolve();
  }
  reboot(): Promise<void> {
    return Promise.resolve();
  }
  reset(): Promise<void> {
    return Promise.resolve();
  }
  destroy(name: string): Promise<void> {
    this.lv.calls.push(`destroy ${name}`);
    this.set(name, { state: 'Shutoff', reason: 'Destroyed' }, 'Stopped', 'Destroyed');
    return Promise.resolve();
  }
  undefine(name: string): Promise<void> {
    this.lv.domains.delete(name);
    this.lv.emit({ kind: 'lifecycle', domain: name, event: 'Undefined', detail: 'Removed' });
    return Promise.resolve();
  }
  setMetadata(name: string, _ns: string, _prefix: string, xml: string): Promise<void> {
    this.domain(name).metadata = xml;
    return Promise.resolve();
  }
  metadata(name: string): Promise<string | undefined> {
    return Promise.resolve(this.lv.domains.get(name)?.metadata);
  }
  stats(): Promise<TypedParams> {
    return Promise.resolve({});
  }
  guestInfo(): Promise<TypedParams> {
    return Promise.resolve({});
  }
  onEvent(listener: (e: HypervisorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  onDisconnect(listener: (e: Error) => void): void {
    this.disconnects.add(listener);
  }
  close(): void {}
}

const identity = { name: 'vm1', namespace: 'ns1', uid: '11111111-2222-3333-4444-555555555555' };
const vmi: VirtualMachineInstance = {
  metadata: { ...identity },
  spec: { terminationGracePeriodSeconds: 1, domain: { memory: { guest: '128Mi' }, devices: {} } },
};

function manager(lv: FakeLibvirt, events: [DomainEventType, DomainJson][] = []): DomainManager {
  const m = new DomainManager({
    identity,
    connect: lv.connect,
    converter: {
      emulation: true,
      kvmAvailable: false,
      socketDir: '/s',
      privateDir: '/p',
      kernelBootDir: '/k',
    },
    layout: { privateDir: '/p', containerDisksDir: '/c', secretsDir: '/p/secret', pvcDir: '/p/vmi-disks' },
    gracePeriodSeconds: 30,
    log: silentLogger(),
    acpiRetryMs: 100,
    reconnectDelayMs: 10,
  });
  m.subscribe({ domain: (type, d) => events.push([type, d]), k8sEvent: () => undefined });
  return m;
}

describe('DomainManager', () => {
  it('starts a domain libvirt never ran, once, and never restarts one that stopped', async () => {
    const lv = new FakeLibvirt();
    const m = manager(lv);
    await m.start();
    await m.sync(vmi);
    await m.sync(vmi);
    expect(lv.calls).toEqual(['define ns1_vm1', 'start ns1_vm1']);
    (lv.domains.get('ns1_vm1') as FakeDomain).status = { state: 'Shutoff', reason: 'Shutdown' };
    await m.sync(vmi);
    expect(lv.calls.filter((c) => c.startsWith('start'))).toHaveLength(1);
    m.close();
  });

  it('starts a VMI with startStrategy Paused paused, and a later sync leaves it paused', async () => {
    const lv = new FakeLibvirt();
    const m = manager(lv);
    await m.start();
    const paused = { ...vmi, spec: { ...vmi.spec, startStrategy: 'Paused' as const } };
    await m.sync(paused);
    await m.sync(paused);
    expect(lv.calls).toEqual(['define ns1_vm1', 'start ns1_vm1 paused']);
    expect(lv.domains.get('ns1_vm1')?.status).toEqual({ state: 'Paused', reason: 'User' });
    await m.unpause(paused);
    expect(lv.domains.get('ns1_vm1')?.status.state).toBe('Running');
    m.close();
  });

  it('refuses commands for another VMI', async () => {
    const lv = new FakeLibvirt();
    const m = manager(lv);
    await m.start();
    const other = { ...vmi, metadata: { ...vmi.metadata, uid: 'other' } };
    await expect(m.sync(other)).rejects.toThrow(CommandError);
    await expect(m.pause(other)).rejects.toThrow(/this launcher runs VMI ns1\/vm1/);
    m.close();
  });

  it('repeats the ACPI request and destroys the domain when the grace period ends', async () => {
    const lv = new FakeLibvirt();
    lv.honoursAcpi = false;
    const m = manager(lv);
    await m.start();
    await m.sync(vmi);
    const started = Date.now();
    await m.shutdown(1);
    const meta = lv.domains.get('ns1_vm1')?.metadata ?? '';
    expect(meta).toMatch(/<deletionGracePeriodSeconds>1<\/deletionGracePeriodSeconds>/);
    expect(meta).toMatch(/<deletionTimestamp>\d{4}-/);
    await expect
      .poll(() => lv.domains.get('ns1_vm1')?.status, { timeout: 5_000 })
      .toEqual({ state: 'Shutoff', reason: 'Destroyed' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(lv.calls.filter((c) => c.startsWith('acpi')).length).toBeGreaterThan(1);
    m.close();
  });

  it('keeps a shutdown deadline across a launcher restart, and does not start a domain being shut down', async () => {
    const lv = new FakeLibvirt();
    lv.honoursAcpi = false;
    const first = manager(lv);
    await first.start();
    await first.sync(vmi);
    await first.shutdown(2);
    first.close();
    // A new launcher process finds the domain running with the deadline recorded in it.
    const second = manager(lv);
    await second.start();
    await expect(second.sync(vmi)).rejects.toThrow(/is shutting down; it is not started again/);
    await expect.poll(() => lv.domains.get('ns1_vm1')?.status.reason, { timeout: 5_000 }).toBe('Destroyed');
    second.close();
  });

  it('reconnects after the daemon died and reports the current state', async () => {
    const lv = new FakeLibvirt();
    const events: [DomainEventType, DomainJson][] = [];
    const m = manager(lv, events);
    await m.start();
    await m.sync(vmi);
    await expect.poll(() => events.at(-1)?.[1].status.status).toBe('Running');
    const before = events.length;
    lv.crash();
    await expect.poll(() => events.length).toBeGreaterThan(before);
    expect(events.at(-1)).toMatchObject(['MODIFIED', { status: { status: 'Running', reason: 'Booted' } }]);
    await m.pause(vmi);
    expect(lv.domains.get('ns1_vm1')?.status).toEqual({ state: 'Paused', reason: 'User' });
    m.close();
  });

  it('announces the domain with ADDED, then MODIFIED, and DELETED with a deletionTimestamp once undefined', async () => {
    const lv = new FakeLibvirt();
    const events: [DomainEventType, DomainJson][] = [];
    const m = manager(lv, events);
    await m.start();
    await m.sync(vmi);
    await m.kill(vmi);
    await m.delete(vmi);
    await expect.poll(() => events.at(-1)?.[0]).toBe('DELETED');
    expect(events[0]?.[0]).toBe('ADDED');
    expect(events.slice(1, -1).every(([type]) => type === 'MODIFIED')).toBe(true);
    expect(events.at(-1)?.[1]).toMatchObject({
      status: { status: 'Shutoff', reason: 'Destroyed' },
      metadata: { deletionTimestamp: expect.any(String) as unknown },
    });
    m.close();
  });
});
