// `virtctl port-forward`: its arguments, the subresource path and errors it builds, and the forwarding itself against
// a real websocket server on the loopback that echoes like a guest (local TCP and UDP listeners, --stdio pipes).
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { parseCommandLine } from './cli.ts';
import { ApiClient } from './client.ts';
import { UsageError, VirtctlError } from './errors.ts';
import {
  forwardPorts,
  parsePort,
  parseTarget,
  pipeStdio,
  portForwardSubresource,
  tunnelFailure,
  tunnelOpener,
  type ForwardedPort,
} from './portforward.ts';
import { KubeConfig } from '@kubernetes/client-node';

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('expected a UsageError');
}

describe('parseTarget', () => {
  it('reads TYPE/NAME, TYPE/NAME.NAMESPACE and TYPE/NAME/NAMESPACE with KubeVirt’s kind words', () => {
    expect(parseTarget('vm/web')).toEqual({ kind: 'vm', name: 'web', namespace: undefined });
    expect(parseTarget('vmi/web.team-a')).toEqual({ kind: 'vmi', name: 'web', namespace: 'team-a' });
    expect(parseTarget('VirtualMachines/web/team-b')).toEqual({
      kind: 'vm',
      name: 'web',
      namespace: 'team-b',
    });
    expect(parseTarget('vmis/x')).toMatchObject({ kind: 'vmi' });
  });

  it('refuses other shapes, naming what is wrong', () => {
    expect(usageError(() => parseTarget('web'))).toMatch(/^the target is TYPE\/NAME/);
    expect(usageError(() => parseTarget('pod/web'))).toMatch(/^unsupported resource type "pod"/);
    expect(usageError(() => parseTarget('vm/'))).toMatch(/^the name in "vm\/" is empty/);
    expect(usageError(() => parseTarget('vm/web.'))).toMatch(/^the namespace in "vm\/web\." is empty/);
    expect(usageError(() => parseTarget('vm/a/b/c'))).toMatch(/^the target is/);
  });
});

describe('parsePort', () => {
  it('reads LOCAL[:GUEST][/PROTOCOL] and KubeVirt’s [PROTOCOL/]LOCAL[:GUEST]', () => {
    expect(parsePort('8080')).toEqual({ local: 8080, guest: 8080, protocol: 'tcp' });
    expect(parsePort('8080:80')).toEqual({ local: 8080, guest: 80, protocol: 'tcp' });
    expect(parsePort('5353:53/udp')).toEqual({ local: 5353, guest: 53, protocol: 'udp' });
    expect(parsePort('udp/5353:53')).toEqual({ local: 5353, guest: 53, protocol: 'udp' });
    expect(parsePort('TCP/22')).toEqual({ local: 22, guest: 22, protocol: 'tcp' });
    expect(parsePort(':80')).toEqual({ local: 0, guest: 80, protocol: 'tcp' });
    expect(parsePort('0:80')).toEqual({ local: 0, guest: 80, protocol: 'tcp' });
  });

  it('refuses ports out of range and unknown protocols, naming the argument', () => {
    expect(usageError(() => parsePort('0'))).toBe(
      'the port in "0" must be a number from 1 to 65535, got "0"',
    );
    expect(usageError(() => parsePort('8080:70000'))).toBe(
      'the guest port in "8080:70000" must be a number from 1 to 65535, got "70000"',
    );
    expect(usageError(() => parsePort('x:80'))).toMatch(/^the local port in "x:80"/);
    expect(usageError(() => parsePort('22/sctp'))).toBe(
      'protocol in "22/sctp" must be tcp or udp, got "sctp"',
    );
    expect(usageError(() => parsePort('1:2:3'))).toMatch(/^a port is/);
  });

  it('builds the subresource KubeVirt’s virt-api serves', () => {
    expect(portForwardSubresource(parsePort('2222:22'))).toBe('portforward/22/tcp');
    expect(portForwardSubresource(parsePort('53/udp'))).toBe('portforward/53/udp');
  });
});

describe('the port-forward command line', () => {
  it('reads target, ports, --address and --stdio=true (as ssh’s ProxyCommand passes it)', () => {
    expect(parseCommandLine(['port-forward', 'vm/web', '8080:80', '9090', '--address', '0.0.0.0'])).toEqual({
      connection: { kubeconfig: undefined, context: undefined, namespace: undefined },
      command: {
        name: 'port-forward',
        target: { kind: 'vm', name: 'web', namespace: undefined },
        ports: [
          { local: 8080, guest: 80, protocol: 'tcp' },
          { local: 9090, guest: 9090, protocol: 'tcp' },
        ],
        address: '0.0.0.0',
        stdio: false,
      },
    });
    expect(parseCommandLine(['port-forward', '--stdio=true', 'vmi/web.ns1', '22']).command).toMatchObject({
      stdio: true,
      address: '127.0.0.1',
      target: { namespace: 'ns1' },
    });
    expect(parseCommandLine(['-n', 'ns1', 'port-forward', 'vm/web.ns1', '22']).connection.namespace).toBe(
      'ns1',
    );
  });

  it('refuses --stdio with more than one port, a missing port, and two different namespaces', () => {
    expect(usageError(() => parseCommandLine(['port-forward', '--stdio', 'vm/a', '22', '80']))).toBe(
      '--stdio forwards exactly one port, got 2',
    );
    expect(usageError(() => parseCommandLine(['port-forward', 'vm/a']))).toMatch(
      /^"port-forward" takes a target and at least one port, got vm\/a/,
    );
    expect(usageError(() => parseCommandLine(['port-forward', '-n', 'b', 'vm/a.c', '22']))).toMatch(
      /^the namespace is given twice: "c" in "vm\/a.c" and "b" with -n/,
    );
  });
});

describe('tunnelFailure', () => {
  const act = {
    what: 'forward TCP port 80 of',
    kind: 'VirtualMachine' as const,
    namespace: 'ns',
    name: 'web',
    verb: 'get' as const,
    resource: 'virtualmachines' as const,
    subresource: 'portforward',
  };
  const status = (code: number, message: string, reason = 'Conflict') =>
    JSON.stringify({ kind: 'Status', code, reason, message });

  it('says how to start a stopped VM', () => {
    expect(
      tunnelFailure(
        act,
        409,
        status(409, 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "web": VMI is not started'),
      ).message,
    ).toBe(
      'cannot forward TCP port 80 of VirtualMachine ns/web: VMI is not started (the VM is not running; start ' +
        'it with: virtctl start web -n ns)',
    );
  });

  it('passes the dial error through without the HTTP wrapping, and the rest as every command does', () => {
    expect(
      tunnelFailure(
        act,
        500,
        status(500, 'Internal error occurred: dialing VM: TCP port 80: refused', 'InternalError'),
      ).message,
    ).toBe('cannot forward TCP port 80 of VirtualMachine ns/web: dialing VM: TCP port 80: refused');
    expect(tunnelFailure(act, 403, status(403, 'no', 'Forbidden')).message).toMatch(
      /needs verb "get" on "virtualmachines\/portforward"/,
    );
  });
});

describe('forwarding through a websocket server', () => {
  let server: WebSocketServer;
  let base: string;
  const paths: string[] = [];

  beforeAll(async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Acts as virt-api plus a guest: a greeting, then every message echoed; "quit" closes like a guest's EOF.
    server.on('connection', (ws, req) => {
      paths.push(req.url ?? '');
      if ((req.url ?? '').endsWith('/tcp')) ws.send(Buffer.from('greeting\n'));
      ws.on('message', (data: Buffer) => {
        if (data.toString() === 'quit') ws.close(1000, 'the stream ended');
        else if (data.toString() === 'fail') ws.close(1011, 'ECONNRESET');
        else ws.send(Buffer.concat([Buffer.from('echo:'), data]));
      });
    });
  });

  afterAll(async () => {
    // Every tunnel ended with its test: none is left open on the server.
    for (let i = 0; i < 100 && server.clients.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    const open = server.clients.size;
    for (const ws of server.clients) ws.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(open).toBe(0);
  });

  function client(): ApiClient {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: base, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'ctx-ns' }],
      currentContext: 'x',
    });
    return new ApiClient(kc);
  }

  it('opens the tunnel on the VM’s or VMI’s portforward path, in the target’s namespace or the context’s', async () => {
    const open = tunnelOpener(client(), { kind: 'vm', name: 'web', namespace: 'team-a' });
    // ApiClient hands websockets over paused; a close handshake needs them reading.
    const ws = await open({ local: 1, guest: 22, protocol: 'tcp' });
    ws.resume();
    ws.close();
    const other = await tunnelOpener(client(), { kind: 'vmi', name: 'db', namespace: undefined })({
      local: 1,
      guest: 53,
      protocol: 'udp',
    });
    other.resume();
    other.close();
    expect(paths.slice(-2)).toEqual([
      '/apis/subresources.kubevirt.io/v1/namespaces/team-a/virtualmachines/web/portforward/22/tcp',
      '/apis/subresources.kubevirt.io/v1/namespaces/ctx-ns/virtualmachineinstances/db/portforward/53/udp',
    ]);
  });

  it('--stdio: stdin to the guest, the guest to stdout only, until the guest ends the stream', async () => {
    const ws = await tunnelOpener(client(), { kind: 'vm', name: 'web', namespace: 'ns' })({
      local: 0,
      guest: 80,
      protocol: 'tcp',
    });
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const out: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    const done = pipeStdio(ws, { stdin, stdout });
    stdin.write('hello');
    // The end of the input does not end the tunnel: what the guest still sends arrives.
    for (let i = 0; i < 200 && !Buffer.concat(out).toString().includes('echo:hello'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    stdin.end('quit');
    await done;
    expect(Buffer.concat(out).toString()).toBe('greeting\necho:hello');
  });

  it('--stdio: a tunnel the server closes with an error rejects with its reason', async () => {
    const ws = await tunnelOpener(client(), { kind: 'vm', name: 'web', namespace: 'ns' })({
      local: 0,
      guest: 80,
      protocol: 'tcp',
    });
    const stdin = new PassThrough();
    const done = pipeStdio(ws, { stdin, stdout: new PassThrough() });
    stdin.write('fail');
    await expect(done).rejects.toThrow(new VirtctlError('the tunnel closed (code 1011): ECONNRESET'));
  });

  it('listens on local TCP and UDP ports, one tunnel per connection, and prints where', async () => {
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const stdout = new PassThrough();
    let printed = '';
    stdout.on('data', (c: Buffer) => (printed += c.toString()));
    const ports: ForwardedPort[] = [
      { local: 0, guest: 80, protocol: 'tcp' },
      { local: 0, guest: 53, protocol: 'udp' },
    ];
    const forwarding = forwardPorts({
      address: '127.0.0.1',
      ports,
      open: tunnelOpener(client(), { kind: 'vm', name: 'web', namespace: 'ns' }),
      stdout,
      stderr: new PassThrough(),
      stopped,
    });
    for (let i = 0; i < 200 && printed.split('\n').length < 3; i++)
      await new Promise((r) => setTimeout(r, 10));
    const tcpPort = Number(/127\.0\.0\.1:(\d+) -> 80\n/.exec(printed)?.[1]);
    const udpPort = Number(/127\.0\.0\.1:(\d+)\/udp -> 53\/udp\n/.exec(printed)?.[1]);
    expect(tcpPort).toBeGreaterThan(0);
    expect(udpPort).toBeGreaterThan(0);

    const talk = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(tcpPort, '127.0.0.1');
        let got = '';
        socket.on('data', (d: Buffer) => {
          got += d.toString();
          if (got === 'greeting\n') socket.write('ping');
          if (got.endsWith('echo:ping')) socket.write('quit');
        });
        socket.on('end', () => resolve(got));
        socket.on('error', reject);
      });
    // Two connections at once, each with its own tunnel.
    expect(await Promise.all([talk(), talk()])).toEqual(['greeting\necho:ping', 'greeting\necho:ping']);

    const udp = dgram.createSocket('udp4');
    const answer = new Promise<string>((resolve) => udp.once('message', (m) => resolve(m.toString())));
    udp.send(Buffer.from('query'), udpPort, '127.0.0.1');
    expect(await answer).toBe('echo:query');
    udp.close();

    stop();
    await forwarding;
    await expect(
      new Promise((resolve, reject) =>
        net.connect(tcpPort, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(paths.filter((p) => p.endsWith('/portforward/80/tcp')).length).toBeGreaterThanOrEqual(2);
  });

  it('reports a refused tunnel on stderr and closes that local connection, and keeps listening', async () => {
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let printed = '';
    let errors = '';
    stdout.on('data', (c: Buffer) => (printed += c.toString()));
    stderr.on('data', (c: Buffer) => (errors += c.toString()));
    const forwarding = forwardPorts({
      address: '127.0.0.1',
      ports: [{ local: 0, guest: 80, protocol: 'tcp' }],
      open: () => Promise.reject(new VirtctlError('cannot forward TCP port 80 of VirtualMachine ns/web: no')),
      stdout,
      stderr,
      stopped,
    });
    for (let i = 0; i < 200 && printed === ''; i++) await new Promise((r) => setTimeout(r, 10));
    const port = Number(/:(\d+) -> 80/.exec(printed)?.[1]);
    for (let n = 0; n < 2; n++) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('close', () => resolve());
        socket.on('error', () => {});
      });
    }
    expect(errors).toBe(
      `port ${port} -> 80: cannot forward TCP port 80 of VirtualMachine ns/web: no\n`.repeat(2),
    );
    stop();
    await forwarding;
  });
});
