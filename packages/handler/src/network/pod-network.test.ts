import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@kubevirt-ts/runtime/logger';
import { masqueradeAddresses } from '@kubevirt-ts/schema/network';
import { afterAll, describe, expect, it } from 'vitest';
import type { VMI } from '../vmi.ts';
import {
  bridgeCommands,
  findPodProcess,
  linkCommands,
  LAUNCHER_SOCKETS_MOUNT,
  masqueradeRuleset,
  PodNetworkSetup,
  podNetworkObservation,
  podSideMac,
} from './pod-network.ts';

const addresses = masqueradeAddresses(undefined);

function vmi(ports?: { port: number; protocol?: 'TCP' | 'UDP' }[]): VMI {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm', namespace: 'ns', uid: 'uid-1' },
    spec: {
      domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ...(ports ? { ports } : {}) }] } },
      networks: [{ name: 'default', pod: {} }],
    },
  };
}

describe('masquerade nftables rules', () => {
  it('forwards only the listed ports, per protocol, to the guest and masquerades the guest on eth0', () => {
    const rules = masqueradeRuleset(addresses, [
      { port: 80 },
      { port: 443, protocol: 'TCP' },
      { port: 53, protocol: 'UDP' },
    ]);
    expect(rules).toContain('iifname "eth0" tcp dport { 80, 443 } dnat to 10.0.2.2');
    expect(rules).toContain('iifname "eth0" udp dport { 53 } dnat to 10.0.2.2');
    expect(rules).toContain('ip saddr 10.0.2.2 oifname "eth0" masquerade');
    // The table is replaced whole: applying it again is a no-op.
    expect(rules.split('\n').slice(0, 2)).toEqual([
      'table ip kubevirt_ts_nat',
      'delete table ip kubevirt_ts_nat',
    ]);
  });

  it('forwards every TCP and UDP port when the interface lists none', () => {
    expect(masqueradeRuleset(addresses, [])).toContain(
      'iifname "eth0" meta l4proto { tcp, udp } dnat to 10.0.2.2',
    );
  });
});

describe('bridge and tap commands', () => {
  it('creates what is missing and always attaches and raises the tap', () => {
    expect(linkCommands(new Set(['lo', 'eth0']), addresses, 1450, false)).toEqual([
      'link add k6t-eth0 mtu 1450 type bridge',
      'tuntap add dev tap0 mode tap',
      'link set tap0 mtu 1450 master k6t-eth0 up',
      'link set k6t-eth0 up',
      'addr add 10.0.2.1/24 brd 10.0.2.255 dev k6t-eth0',
    ]);
    expect(linkCommands(new Set(['eth0', 'k6t-eth0', 'tap0']), addresses, undefined, true)).toEqual([
      'link set tap0 master k6t-eth0 up',
      'link set k6t-eth0 up',
    ]);
  });
});

describe('finding the launcher pod process', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it("matches the process whose root shows the same launcher socket file as the pod's sockets folder", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podproc-'));
    dirs.push(dir);
    const sockets = join(dir, 'pods', 'uid', 'sockets');
    await mkdir(sockets, { recursive: true });
    await writeFile(join(sockets, 'launcher-sock'), '');
    // A fake /proc: pid 10's root is elsewhere, pid 20's root holds the pod's sockets folder at the mount path.
    const proc = join(dir, 'proc');
    for (const pid of ['10', '20', 'self']) await mkdir(join(proc, pid), { recursive: true });
    await mkdir(join(dir, 'other', LAUNCHER_SOCKETS_MOUNT), { recursive: true });
    await writeFile(join(dir, 'other', LAUNCHER_SOCKETS_MOUNT, 'launcher-sock'), '');
    await symlink(join(dir, 'other'), join(proc, '10', 'root'));
    const root20 = join(dir, 'root20');
    await mkdir(join(root20, LAUNCHER_SOCKETS_MOUNT, '..'), { recursive: true });
    await symlink(sockets, join(root20, LAUNCHER_SOCKETS_MOUNT));
    await symlink(root20, join(proc, '20', 'root'));
    expect(await findPodProcess(sockets, 'launcher-sock', proc)).toBe(20);
    // /var/run is a symlink to /run in most images; an absolute symlink under /proc/PID/root would resolve against
    // the handler's root, so the /run spelling is looked at too.
    await rm(join(proc, '20', 'root'));
    const root30 = join(dir, 'root30');
    await mkdir(join(root30, 'run', 'kubevirt'), { recursive: true });
    await symlink(sockets, join(root30, 'run', 'kubevirt', 'sockets'));
    await mkdir(join(proc, '30'));
    await symlink(root30, join(proc, '30', 'root'));
    expect(await findPodProcess(sockets, 'launcher-sock', proc)).toBe(30);
    expect(await findPodProcess(join(dir, 'nowhere'), 'launcher-sock', proc)).toBeUndefined();
  });

  it('runs ip, sysctl and nft in the namespace of that process and reports the pod IP', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podnet-'));
    dirs.push(dir);
    const sockets = join(dir, 'sockets');
    await mkdir(sockets);
    await writeFile(join(sockets, 'launcher-sock'), '');
    await mkdir(join(dir, 'proc', '42', 'rootdir', LAUNCHER_SOCKETS_MOUNT, '..'), { recursive: true });
    await symlink(sockets, join(dir, 'proc', '42', 'rootdir', LAUNCHER_SOCKETS_MOUNT));
    await symlink(join(dir, 'proc', '42', 'rootdir'), join(dir, 'proc', '42', 'root'));
    const calls: { netns: string; argv: readonly string[]; input?: string | undefined }[] = [];
    const setup = new PodNetworkSetup({
      log: silentLogger(),
      procDir: join(dir, 'proc'),
      run: (netns, argv, input) => {
        calls.push({ netns, argv, input });
        if (argv[1] === '-j')
          return Promise.resolve(
            JSON.stringify([
              { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
              {
                ifname: 'eth0',
                mtu: 1500,
                addr_info: [{ family: 'inet', local: '10.244.1.9', prefixlen: 24 }],
              },
            ]),
          );
        return Promise.resolve('');
      },
    });
    const v = vmi([{ port: 80 }]);
    expect(await setup.setUp(v, sockets, 'launcher-sock', join(dir, 'private'))).toEqual({
      podIPs: ['10.244.1.9'],
    });
    expect(new Set(calls.map((c) => c.netns))).toEqual(new Set([join(dir, 'proc', '42', 'ns', 'net')]));
    expect(calls.map((c) => c.argv[0])).toEqual(['ip', 'ip', 'sysctl', 'nft']);
    expect(calls[1]?.input).toContain('tuntap add dev tap0 mode tap');
    expect(calls[3]?.input).toContain('tcp dport { 80 } dnat to 10.0.2.2');
    expect(podNetworkObservation(v, { podIPs: ['10.244.1.9'] })).toMatchObject({
      name: 'default',
      podIPs: ['10.244.1.9'],
    });
  });
});

describe('the passt binding', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('changes nothing in the launcher pod: it only reads the pod IP, which the status reports', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podnet-passt-'));
    dirs.push(dir);
    const sockets = join(dir, 'sockets');
    await mkdir(sockets);
    await writeFile(join(sockets, 'launcher-sock'), '');
    await mkdir(join(dir, 'proc', '7', 'rootdir', LAUNCHER_SOCKETS_MOUNT, '..'), { recursive: true });
    await symlink(sockets, join(dir, 'proc', '7', 'rootdir', LAUNCHER_SOCKETS_MOUNT));
    await symlink(join(dir, 'proc', '7', 'rootdir'), join(dir, 'proc', '7', 'root'));
    const calls: (readonly string[])[] = [];
    const setup = new PodNetworkSetup({
      log: silentLogger(),
      procDir: join(dir, 'proc'),
      run: (_netns, argv) => {
        calls.push(argv);
        return Promise.resolve(
          JSON.stringify([
            {
              ifname: 'eth0',
              mtu: 1500,
              addr_info: [{ family: 'inet', local: '10.244.2.7', prefixlen: 24 }],
            },
          ]),
        );
      },
    });
    const v: VMI = {
      ...vmi(),
      spec: {
        domain: { devices: { interfaces: [{ name: 'default', passtBinding: {}, ports: [{ port: 80 }] }] } },
        networks: [{ name: 'default', pod: {} }],
      },
    };
    const status = await setup.setUp(v, sockets, 'launcher-sock', join(dir, 'private'));
    expect(status).toEqual({ podIPs: ['10.244.2.7'] });
    expect(calls).toEqual([['ip', '-j', 'addr', 'show']]);
    expect(podNetworkObservation(v, status)).toEqual({
      name: 'default',
      mac: expect.stringMatching(/^52:54:00(:[0-9a-f]{2}){3}$/) as string,
      podIPs: ['10.244.2.7'],
    });
  });
});

describe('bridge binding commands', () => {
  const cache = {
    binding: 'bridge' as const,
    podIP: '10.244.1.9',
    prefix: 24,
    gateway: '10.244.1.1',
    mac: 'aa:bb:cc:00:11:22',
    mtu: 1500,
  };

  it("takes the pod interface's address and MAC away, bridges it with the tap, and routes broadcasts to the bridge", () => {
    const links = [
      {
        ifname: 'eth0',
        address: 'aa:bb:cc:00:11:22',
        mtu: 1500,
        addr_info: [{ family: 'inet', local: '10.244.1.9', prefixlen: 24 }],
      },
    ];
    expect(bridgeCommands(links, cache, '02:00:00:00:00:01')).toEqual([
      'addr del 10.244.1.9/24 dev eth0',
      'link set eth0 down',
      'link set eth0 address 02:00:00:00:00:01',
      'link add k6t-eth0 mtu 1500 type bridge',
      'link set eth0 master k6t-eth0 up',
      'tuntap add dev tap0 mode tap',
      'link set tap0 mtu 1500 master k6t-eth0 up',
      'link set k6t-eth0 up',
      'addr add 169.254.75.10/32 dev k6t-eth0',
      'route replace 255.255.255.255/32 dev k6t-eth0 src 169.254.75.10',
    ]);
  });

  it('repeats only what is idempotent once done', () => {
    const done = [
      { ifname: 'eth0', address: '02:00:00:00:00:01', mtu: 1500 },
      { ifname: 'k6t-eth0', addr_info: [{ family: 'inet', local: '169.254.75.10', prefixlen: 32 }] },
      { ifname: 'tap0' },
    ];
    expect(bridgeCommands(done, cache, '02:00:00:00:00:01')).toEqual([
      'link set eth0 master k6t-eth0 up',
      'link set tap0 mtu 1500 master k6t-eth0 up',
      'link set k6t-eth0 up',
      'route replace 255.255.255.255/32 dev k6t-eth0 src 169.254.75.10',
    ]);
    expect(podSideMac('u1')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });
});
