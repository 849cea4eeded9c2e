// Port-forward's decisions (which VMI, which address, which error) as pure functions, and its dialer against real
// TCP and UDP servers on the loopback.
import dgram from 'node:dgram';
import net from 'node:net';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { afterEach, describe, expect, it } from 'vitest';
import { dialFailure, dialGuest, guestAddress, validateForPortForward, vmiOfVM } from './portforward.ts';
import { errorOf } from './test-support.ts';

function vmi(
  binding: Record<string, unknown> = { masquerade: {} },
  status: VirtualMachineInstance['status'] = {
    phase: 'Running',
    interfaces: [{ name: 'default', ipAddress: '10.244.1.7', ipAddresses: ['10.244.1.7'] }],
  },
): VirtualMachineInstance {
  return {
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-uid', ownerReferences: [] },
    spec: {
      domain: { devices: { interfaces: [{ name: 'default', ...binding }] } },
      networks: [{ name: 'default', pod: {} }],
    },
    status,
  };
}

describe('vmiOfVM', () => {
  const vm = (created: boolean): VirtualMachine =>
    ({
      metadata: { name: 'vm1', namespace: 'ns', uid: 'vm-uid' },
      spec: {},
      status: { created },
    }) as VirtualMachine;

  it('takes the VMI the VM owns', () => {
    const owned = vmi();
    owned.metadata = { ...owned.metadata, ownerReferences: [{ uid: 'vm-uid' } as never] };
    expect(vmiOfVM(vm(true), owned, 'vm1')).toBe(owned);
  });

  it('answers 409 "VMI is not started" for a stopped VM and 404 for a VMI it does not own', () => {
    expect(errorOf(() => vmiOfVM(vm(false), undefined, 'vm1'))).toMatchObject({
      code: 409,
      message: 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": VMI is not started',
    });
    expect(errorOf(() => vmiOfVM(vm(true), undefined, 'vm1')).code).toBe(404);
    expect(errorOf(() => vmiOfVM(vm(true), vmi(), 'vm1'))).toMatchObject({
      code: 404,
      message: 'virtualmachineinstance.kubevirt.io "vm1" not found',
    });
  });
});

describe('validateForPortForward', () => {
  it('needs a Running VMI that is not paused', () => {
    expect(() => validateForPortForward(vmi(), 'vm1')).not.toThrow();
    expect(errorOf(() => validateForPortForward(vmi({}, { phase: 'Scheduled' }), 'vm1'))).toMatchObject({
      code: 409,
      message:
        'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "vm1": VMI is not running ' +
        '(phase Scheduled); port-forward needs a Running VMI',
    });
    const paused = vmi({}, { phase: 'Running', conditions: [{ type: 'Paused', status: 'True' }] });
    expect(errorOf(() => validateForPortForward(paused, 'vm1')).message).toMatch(/VMI is paused$/);
  });
});

describe('guestAddress', () => {
  it('is the pod IP reported for the pod network interface, with the masquerade ports', () => {
    expect(
      guestAddress(vmi({ masquerade: {}, ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }), 'vm1'),
    ).toEqual({
      ip: '10.244.1.7',
      interfaceName: 'default',
      interfaceIndex: 0,
      masqueradePorts: [
        { port: 80, protocol: 'TCP' },
        { port: 53, protocol: 'UDP' },
      ],
    });
    expect(guestAddress(vmi({ bridge: {} }), 'vm1')).toEqual({
      ip: '10.244.1.7',
      interfaceName: 'default',
      interfaceIndex: 0,
    });
  });

  it('answers 409 while no IP is reported and 400 for a VMI without a pod network', () => {
    expect(errorOf(() => guestAddress(vmi({}, { phase: 'Running', interfaces: [] }), 'vm1'))).toMatchObject({
      code: 409,
    });
    const noPod = vmi();
    noPod.spec.networks = [];
    expect(errorOf(() => guestAddress(noPod, 'vm1'))).toMatchObject({ code: 400 });
    expect(errorOf(() => guestAddress(noPod, 'vm1')).message).toContain('has no pod network');
  });
});

describe('dialFailure', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.244.1.7:8080'), { code: 'ECONNREFUSED' });

  it('names the masquerade port list when it leaves the port out', () => {
    const address = guestAddress(vmi({ masquerade: {}, ports: [{ name: 'http', port: 80 }] }), 'vm1');
    const err = dialFailure(refused, address, { port: 8080, protocol: 'tcp' });
    expect(err.code).toBe(500);
    expect(err.message).toBe(
      'Internal error occurred: dialing VM: TCP port 8080 of the VMI at 10.244.1.7: connect ECONNREFUSED ' +
        '10.244.1.7:8080; the masquerade interface "default" forwards only the ports in ' +
        'spec.domain.devices.interfaces[0].ports (80/TCP) into the guest',
    );
  });

  it('says nothing accepts the port when the pod forwards it', () => {
    const address = guestAddress(vmi({ bridge: {} }), 'vm1');
    expect(dialFailure(refused, address, { port: 8080, protocol: 'tcp' }).message).toMatch(
      /; nothing in the guest accepts connections on that port$/,
    );
  });
});

describe('dialGuest', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  it('connects TCP and carries bytes both ways', async () => {
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const stream = await dialGuest('127.0.0.1', { port, protocol: 'tcp' });
    const echoed = new Promise<string>((resolve) =>
      stream.once('data', (d: Buffer) => resolve(d.toString())),
    );
    stream.write('ping');
    expect(await echoed).toBe('ping');
    stream.destroy();
  });

  it('rejects with ECONNREFUSED when nothing listens', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await expect(dialGuest('127.0.0.1', { port, protocol: 'tcp' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('keeps UDP datagram boundaries both ways', async () => {
    const server = dgram.createSocket('udp4');
    server.on('message', (msg, from) =>
      server.send(Buffer.concat([Buffer.from('re:'), msg]), from.port, from.address),
    );
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const stream = await dialGuest('127.0.0.1', { port: server.address().port, protocol: 'udp' });
    const got: string[] = [];
    stream.on('data', (d: Buffer) => got.push(d.toString()));
    stream.write(Buffer.from('one'));
    stream.write(Buffer.from('two'));
    for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got.sort()).toEqual(['re:one', 're:two']);
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.destroy();
    await closed;
  });
});
