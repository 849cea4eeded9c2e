import { createSocket } from 'node:dgram';
import { silentLogger } from '@kubevirt-ts/runtime/logger';
import { describe, expect, it } from 'vitest';
import {
  answer,
  decodeRequest,
  encodeDomainSearch,
  MessageType,
  parseResolvConf,
  type Lease,
} from './dhcp.ts';
import { DhcpServer } from './dhcp-server.ts';
import { bridgeLease, masqueradeLease } from './pod-network.ts';

const MAC = '52:54:00:12:34:56';
const lease: Lease = {
  address: '10.0.2.2',
  netmask: '255.255.255.0',
  router: '10.0.2.1',
  serverId: '10.0.2.1',
  broadcast: '10.0.2.255',
  dns: ['10.96.0.10'],
  search: ['ns.svc.cluster.local', 'svc.cluster.local'],
  hostname: 'testvm',
  mtu: 1500,
};

/** A client's BOOTREQUEST as busybox udhcpc sends it. */
function request(
  type: number,
  options: { mac?: string; requested?: string; server?: string; ciaddr?: string } = {},
) {
  const b = Buffer.alloc(240);
  b.writeUInt8(1, 0);
  b.writeUInt8(1, 1);
  b.writeUInt8(6, 2);
  b.writeUInt32BE(0xdeadbeef, 4);
  b.writeUInt16BE(0x8000, 10);
  if (options.ciaddr) Buffer.from(options.ciaddr.split('.').map(Number)).copy(b, 12);
  Buffer.from((options.mac ?? MAC).split(':').map((h) => parseInt(h, 16))).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const opts = [53, 1, type];
  if (options.requested) opts.push(50, 4, ...options.requested.split('.').map(Number));
  if (options.server) opts.push(54, 4, ...options.server.split('.').map(Number));
  opts.push(55, 3, 1, 3, 6, 0, 255);
  return Buffer.concat([b, Buffer.from(opts)]);
}

/** The options of a reply, by code. */
function options(packet: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 240;
  while (i < packet.length && packet[i] !== 255) {
    if (packet[i] === 0) {
      i++;
      continue;
    }
    const len = packet[i + 1] ?? 0;
    out.set(packet[i] ?? 0, packet.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

describe('DHCP answers', () => {
  it('offers the guest its address with mask, router, DNS, search, hostname, MTU and an infinite lease', () => {
    const reply = answer(request(MessageType.discover), MAC, lease);
    expect(reply?.type).toBe(MessageType.offer);
    const p = reply?.packet ?? Buffer.alloc(0);
    expect(p.length).toBeGreaterThanOrEqual(300);
    expect(p.readUInt8(0)).toBe(2);
    expect(p.readUInt32BE(4)).toBe(0xdeadbeef);
    expect([...p.subarray(16, 20)].join('.')).toBe('10.0.2.2');
    expect(p.subarray(28, 34).toString('hex')).toBe('525400123456');
    const o = options(p);
    expect(o.get(53)?.readUInt8(0)).toBe(MessageType.offer);
    expect([...(o.get(54) ?? [])].join('.')).toBe('10.0.2.1');
    expect([...(o.get(1) ?? [])].join('.')).toBe('255.255.255.0');
    expect([...(o.get(3) ?? [])].join('.')).toBe('10.0.2.1');
    expect([...(o.get(6) ?? [])].join('.')).toBe('10.96.0.10');
    expect(o.get(51)?.readUInt32BE(0)).toBe(0xffffffff);
    expect(o.get(12)?.toString()).toBe('testvm');
    expect(o.get(26)?.readUInt16BE(0)).toBe(1500);
    expect(o.get(119)).toEqual(encodeDomainSearch(lease.search));
  });

  it('acks a request for its address, naks another, and ignores other servers and other MACs', () => {
    expect(
      answer(request(MessageType.request, { requested: '10.0.2.2', server: '10.0.2.1' }), MAC, lease)?.type,
    ).toBe(MessageType.ack);
    expect(answer(request(MessageType.request, { ciaddr: '10.0.2.2' }), MAC, lease)?.type).toBe(
      MessageType.ack,
    );
    const nak = answer(request(MessageType.request, { requested: '10.0.2.9' }), MAC, lease);
    expect(nak?.type).toBe(MessageType.nak);
    expect([...(nak?.packet.subarray(16, 20) ?? [])].join('.')).toBe('0.0.0.0');
    expect(
      answer(request(MessageType.request, { requested: '10.0.2.2', server: '10.9.9.9' }), MAC, lease),
    ).toBeUndefined();
    expect(answer(request(MessageType.discover, { mac: '52:54:00:00:00:01' }), MAC, lease)).toBeUndefined();
    expect(answer(request(MessageType.release), MAC, lease)).toBeUndefined();
    expect(answer(Buffer.from('not dhcp'), MAC, lease)).toBeUndefined();
    expect(decodeRequest(request(MessageType.discover).subarray(0, 200))).toBeUndefined();
  });

  it('encodes search domains as RFC 1035 names', () => {
    expect(encodeDomainSearch(['a.bc'])).toEqual(Buffer.from([1, 97, 2, 98, 99, 0]));
  });

  it("reads the pod's resolv.conf: IPv4 name servers and the search list", () => {
    const conf =
      'search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::10\noptions ndots:5\n# nameserver 1.1.1.1\n';
    expect(parseResolvConf(conf)).toEqual({
      dns: ['10.96.0.10'],
      search: ['ns.svc.cluster.local', 'svc.cluster.local'],
    });
  });

  it('builds the lease from the VMI: vmNetworkCIDR, hostname, DNS', () => {
    const vmi = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'vm1', namespace: 'ns', uid: 'u1' },
      spec: {
        hostname: 'guest1',
        domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } },
        networks: [{ name: 'default', pod: { vmNetworkCIDR: '192.168.50.0/24' } }],
      },
    };
    expect(masqueradeLease(vmi, 'nameserver 10.96.0.10\n', 1400)).toEqual({
      address: '192.168.50.2',
      netmask: '255.255.255.0',
      router: '192.168.50.1',
      serverId: '192.168.50.1',
      broadcast: '192.168.50.255',
      dns: ['10.96.0.10'],
      search: [],
      hostname: 'guest1',
      mtu: 1400,
    });
  });
});

describe('bridge lease', () => {
  it("offers the pod's own address, prefix, gateway and MTU, answering from the bridge's link-local address", () => {
    const vmi = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'vm1', namespace: 'ns', uid: 'u1' },
      spec: {
        domain: { devices: { interfaces: [{ name: 'default', bridge: {} }] } },
        networks: [{ name: 'default', pod: {} }],
      },
    };
    const cache = {
      binding: 'bridge' as const,
      podIP: '10.244.1.9',
      prefix: 24,
      gateway: '10.244.1.1',
      mac: 'aa:bb:cc:00:11:22',
      mtu: 1450,
    };
    expect(bridgeLease(vmi, cache, 'nameserver 10.96.0.10\n')).toEqual({
      address: '10.244.1.9',
      netmask: '255.255.255.0',
      router: '10.244.1.1',
      serverId: '169.254.75.10',
      broadcast: '10.244.1.255',
      dns: ['10.96.0.10'],
      search: [],
      hostname: 'vm1',
      mtu: 1450,
    });
    const reply = answer(
      request(MessageType.discover, { mac: 'aa:bb:cc:00:11:22' }),
      'aa:bb:cc:00:11:22',
      bridgeLease(vmi, cache, ''),
    );
    expect([...(options(reply?.packet ?? Buffer.alloc(0)).get(54) ?? [])].join('.')).toBe('169.254.75.10');
  });
});

describe('DhcpServer', () => {
  it('answers a DISCOVER over UDP with an OFFER', async () => {
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const server = new DhcpServer({
      mac: MAC,
      lease,
      log: silentLogger(),
      port: 0,
      address: '127.0.0.1',
      replyTo: '127.0.0.1',
      replyPort: client.address().port,
    });
    await server.start();
    try {
      const got = new Promise<Buffer>((resolve) => client.once('message', (m) => resolve(m)));
      client.send(request(MessageType.discover), server.port ?? 0, '127.0.0.1');
      const reply = await got;
      expect(options(reply).get(53)?.readUInt8(0)).toBe(MessageType.offer);
    } finally {
      await server.close();
      client.close();
    }
  });
});
