import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_IMAGE,
  clientPod,
  clientResult,
  describeGuestNetwork,
  guestNetwork,
  httpUrl,
  reachCommands,
  vmiIP,
} from './demo-network.ts';
import { consoleLines } from './stack/console.ts';

describe('vmiIP', () => {
  it("is status.interfaces[0].ipAddress, kubectl get vmi's IP column", () => {
    const vmi = {
      status: {
        interfaces: [
          { name: 'default', ipAddress: '172.30.1.7', ipAddresses: ['172.30.1.7'], mac: '52:54:00:12:34:56' },
          { name: 'other', ipAddress: '10.9.9.9' },
        ],
      },
    };
    expect(vmiIP(vmi)).toBe('172.30.1.7');
  });

  it('is undefined until virt-handler reports an address', () => {
    expect(vmiIP(undefined)).toBeUndefined();
    expect(vmiIP({ status: { phase: 'Running' } })).toBeUndefined();
    expect(
      vmiIP({ status: { interfaces: [{ name: 'default', mac: '52:54:00:12:34:56' }] } }),
    ).toBeUndefined();
    expect(vmiIP({ status: { interfaces: [{ name: 'default', ipAddress: '' }] } })).toBeUndefined();
  });
});

describe('guestNetwork', () => {
  // What the test guest prints (packages/devcluster/src/guest/guest-files.ts), as the serial console carries it.
  const boot = [
    '[    0.000000] Linux version 6.1.0-44-amd64',
    'kubevirt-ts-guest: cloud-init NoCloud data found on /dev/sr0\r',
    'hello from the kubevirt-ts demo\r',
    '\x1b[0mkubevirt-ts-guest: eth0 10.0.2.2/24 via 10.0.2.1\r',
    'kubevirt-ts-guest: http servers on ports 80 and 8080\r',
    'kubevirt-ts-guest: ready\r',
  ].join('\n');

  it("finds the lease line the guest prints, through the console's control characters", () => {
    const network = guestNetwork(consoleLines(boot));
    expect(network).toEqual({
      kind: 'lease',
      address: '10.0.2.2',
      prefix: 24,
      gateway: '10.0.2.1',
      line: 'kubevirt-ts-guest: eth0 10.0.2.2/24 via 10.0.2.1',
    });
    expect(describeGuestNetwork(network)).toBe(
      'eth0 10.0.2.2/24 via 10.0.2.1: the address the guest took by DHCP',
    );
  });

  it('takes the last report when the guest booted twice', () => {
    const twice = `${boot}\nkubevirt-ts-guest: eth0 10.0.2.2/24 via 10.0.2.1\nkubevirt-ts-guest: eth0 172.30.1.9/24 via 172.30.1.1`;
    expect(guestNetwork(consoleLines(twice))).toMatchObject({ address: '172.30.1.9', gateway: '172.30.1.1' });
  });

  it('says when the lease has no default route', () => {
    const network = guestNetwork(['kubevirt-ts-guest: eth0 10.0.2.2/24 via']);
    expect(network).toMatchObject({ kind: 'lease', address: '10.0.2.2', gateway: undefined });
    expect(describeGuestNetwork(network)).toContain('(no default route)');
  });

  it('reports a guest without a lease or without a NIC, and a console without either line', () => {
    const noLease = guestNetwork(['kubevirt-ts-guest: eth0 got no DHCP lease: udhcpc: no lease, failing']);
    expect(noLease?.kind).toBe('no-lease');
    expect(describeGuestNetwork(noLease)).toBe(
      'the guest got no DHCP lease: kubevirt-ts-guest: eth0 got no DHCP lease: udhcpc: no lease, failing',
    );
    const noNic = guestNetwork(['kubevirt-ts-guest: no network interface', 'kubevirt-ts-guest: ready']);
    expect(noNic?.kind).toBe('no-nic');
    expect(describeGuestNetwork(noNic)).toBe('the guest has no network interface');
    expect(guestNetwork(['kubevirt-ts-guest: ready'])).toBeUndefined();
    expect(describeGuestNetwork(undefined)).toMatch(/no line about the guest network/);
  });
});

describe('httpUrl', () => {
  it('brackets IPv6 addresses', () => {
    expect(httpUrl('172.30.1.7', 80)).toBe('http://172.30.1.7:80/');
    expect(httpUrl('fd00::7', 80)).toBe('http://[fd00::7]:80/');
  });
});

describe('clientResult', () => {
  it('returns the body after "reply: ", over several lines', () => {
    expect(clientResult('reply: kubevirt-ts-guest demo-vm\n')).toEqual({
      reached: true,
      body: 'kubevirt-ts-guest demo-vm',
    });
    expect(clientResult('reply: line one\nline two\n')).toEqual({
      reached: true,
      body: 'line one\nline two',
    });
  });

  it('returns the last error, or the whole log when the script did not get that far', () => {
    expect(clientResult('no reply: curl: (7) Failed to connect\n')).toEqual({
      reached: false,
      detail: 'curl: (7) Failed to connect',
    });
    expect(clientResult('sh: 1: curl: not found\n')).toEqual({
      reached: false,
      detail: 'sh: 1: curl: not found',
    });
    expect(clientResult('')).toEqual({ reached: false, detail: 'the client pod printed nothing' });
  });
});

describe('clientPod', () => {
  it('is a run-once pod of the client image with a shell script', () => {
    const pod = clientPod('demo-vm-client', 'http://172.30.1.7:80/', { app: 'demo-vm-client' });
    expect(pod.metadata).toEqual({ name: 'demo-vm-client', labels: { app: 'demo-vm-client' } });
    expect(pod.spec?.restartPolicy).toBe('Never');
    const container = pod.spec?.containers[0];
    expect(container?.image).toBe(CLIENT_IMAGE);
    expect(container?.command?.slice(0, 2)).toEqual(['sh', '-c']);
    expect(container?.command?.[2]).toContain('curl -fsS -m 3 http://172.30.1.7:80/');
  });

  // The script itself, run with this machine's sh and curl against a real HTTP server (as devcluster runs the
  // node:24 pod with the machine's tools).
  describe('its script', () => {
    let server: Server;
    let port = 0;
    beforeAll(async () => {
      server = createServer((_req, res) => res.end('kubevirt-ts-guest demo-vm\n'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const runScript = (url: string, attempts: number) =>
      new Promise<{ code: number; log: string }>((resolve) => {
        const command = clientPod('c', url, {}, attempts).spec?.containers[0]?.command ?? [];
        execFile(command[0] ?? 'sh', command.slice(1), { timeout: 30_000 }, (err, stdout) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, log: stdout }),
        );
      });

    it('prints the reply and exits 0 when the server answers', async () => {
      const { code, log } = await runScript(`http://127.0.0.1:${port}/`, 3);
      expect(code).toBe(0);
      expect(clientResult(log)).toEqual({ reached: true, body: 'kubevirt-ts-guest demo-vm' });
    });

    it("prints curl's error and exits 1 when nothing listens", async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const { code, log } = await runScript(`http://127.0.0.1:${closedPort}/`, 1);
      expect(code).toBe(1);
      const result = clientResult(log);
      expect(result.reached).toBe(false);
      expect(result).toMatchObject({ detail: expect.stringMatching(/curl: \(7\)/) as unknown });
    });
  });
});

describe('reachCommands', () => {
  it('runs curl in a pod, waits for it, shows its log and deletes it (no attach needed)', () => {
    expect(reachCommands('172.30.1.7')).toEqual([
      'kubectl run curl-demo --image=node:24 --restart=Never --command -- curl -sS -m 10 http://172.30.1.7:80/',
      "kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/curl-demo --timeout=60s && kubectl logs curl-demo",
      'kubectl delete pod curl-demo',
    ]);
  });
});
