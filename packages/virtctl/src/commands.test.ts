// What virtctl sends and prints, against a small HTTP server on the loopback standing in for the API server (the
// real one is in test/): KubeVirt's paths and option bodies, the kubeconfig's credentials, the namespace rules,
// clear errors, and the VNC proxy's port.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ApiClient } from './client.ts';
import { parseCommandLine } from './cli.ts';
import { execute, type Io } from './commands.ts';
import { VirtctlError } from './errors.ts';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

let server: http.Server;
let dir: string;
let kubeconfig: string;
const seen: Seen[] = [];
let answer: (req: Seen) => { status: number; body?: unknown } = () => ({ status: 202 });
const wss = new WebSocketServer({ noServer: true });
const vncReceived: Buffer[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const entry: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        body: text === '' ? undefined : (JSON.parse(text) as unknown),
      };
      seen.push(entry);
      const { status, body } = answer(entry);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    });
  });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(Buffer.from('RFB 003.008\n'));
      ws.on('message', (data: Buffer) => vncReceived.push(Buffer.from(data)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtctl-test-'));
  kubeconfig = path.join(dir, 'config');
  fs.writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain HTTP unless TLS verification is off; the stand-in server speaks HTTP.
      clusters: [
        { name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
      ],
      users: [{ name: 'u', user: { token: 'secret-token' } }],
      contexts: [
        { name: 'main', context: { cluster: 'c', user: 'u', namespace: 'team-a' } },
        { name: 'other', context: { cluster: 'c', user: 'u' } },
      ],
      'current-context': 'main',
    }),
  );
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen.length = 0;
  answer = () => ({ status: 202 });
});

function run(args: string[]): Promise<{ stdout: string; error?: Error }> & { io: Io } {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  const io: Io = { stdin: new PassThrough(), stdout, stderr: new PassThrough() };
  const promise = execute(parseCommandLine([...args, '--kubeconfig', kubeconfig]), io).then(
    () => ({ stdout: Buffer.concat(chunks).toString() }),
    (error: Error) => ({ stdout: Buffer.concat(chunks).toString(), error }),
  );
  return Object.assign(promise, { io });
}

describe('lifecycle commands', () => {
  it('start: PUTs StartOptions to the subresource with the token, in the context’s namespace', async () => {
    const result = await run(['start', 'vm1', '--paused']);
    expect(result).toEqual({ stdout: 'VM vm1 was scheduled to start\n' });
    expect(seen).toEqual([
      {
        method: 'PUT',
        url: '/apis/subresources.kubevirt.io/v1/namespaces/team-a/virtualmachines/vm1/start',
        authorization: 'Bearer secret-token',
        body: { kind: 'StartOptions', apiVersion: 'subresources.kubevirt.io/v1', paused: true },
      },
    ]);
  });

  it('stop and restart: grace periods and dry runs in KubeVirt’s bodies; -n and --context pick the namespace', async () => {
    await run(['stop', 'vm1', '--grace-period=0', '--force', '-n', 'ns2']);
    await run(['restart', 'vm1', '--dry-run', '--context', 'other']);
    expect(seen.map((s) => [s.url, s.body])).toEqual([
      [
        '/apis/subresources.kubevirt.io/v1/namespaces/ns2/virtualmachines/vm1/stop',
        { kind: 'StopOptions', apiVersion: 'subresources.kubevirt.io/v1', gracePeriod: 0 },
      ],
      [
        '/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines/vm1/restart',
        { kind: 'RestartOptions', apiVersion: 'subresources.kubevirt.io/v1', dryRun: ['All'] },
      ],
    ]);
  });

  it('pause vm: checks the VM, then pauses its VMI', async () => {
    answer = (req) =>
      req.method === 'GET' ? { status: 200, body: { kind: 'VirtualMachine' } } : { status: 200 };
    const result = await run(['pause', 'vm', 'vm1']);
    expect(result.stdout).toBe('VMI vm1 was scheduled to pause\n');
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /apis/kubevirt.io/v1/namespaces/team-a/virtualmachines/vm1',
      'PUT /apis/subresources.kubevirt.io/v1/namespaces/team-a/virtualmachineinstances/vm1/pause',
    ]);
  });

  it('fails with a clear message on 403 and on a missing VM', async () => {
    answer = () => ({
      status: 403,
      body: { kind: 'Status', code: 403, reason: 'Forbidden', message: 'User "bob" cannot update resource' },
    });
    const denied = await run(['stop', 'vm1']);
    expect(denied.error).toBeInstanceOf(VirtctlError);
    expect(denied.error?.message).toMatch(
      /^forbidden: you may not stop VirtualMachine team-a\/vm1: this needs verb "update" on "virtualmachines\/stop"/,
    );
    answer = () => ({
      status: 404,
      body: {
        kind: 'Status',
        code: 404,
        reason: 'NotFound',
        message: 'virtualmachines.kubevirt.io "vm9" not found',
        details: { name: 'vm9', kind: 'virtualmachines' },
      },
    });
    expect((await run(['pause', 'vm', 'vm9'])).error?.message).toBe(
      'VirtualMachine "vm9" not found in namespace "team-a"',
    );
  });

  it('guestosinfo prints the JSON; version prints both versions', async () => {
    answer = (req) =>
      req.url.endsWith('/version')
        ? { status: 200, body: { gitVersion: 'v9.9.9', platform: 'linux/amd64' } }
        : { status: 200, body: { name: 'busybox' } };
    expect((await run(['guestosinfo', 'vm1'])).stdout).toBe('{\n  "name": "busybox"\n}\n');
    expect((await run(['version'])).stdout).toMatch(
      /^Client Version: v\d+\.\d+\.\d+\nServer Version: v9\.9\.9 \(linux\/amd64\)\n$/,
    );
  });

  it('says when the cluster cannot be reached', async () => {
    const client = new ApiClient(
      (() => {
        const kc = ApiClient.fromFlags({ kubeconfig }).kubeConfig;
        kc.clusters[0] = { ...kc.clusters[0]!, server: 'http://127.0.0.1:1' };
        return kc;
      })(),
    );
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
    const err = await execute(parseCommandLine(['start', 'vm1']), io, () => client).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      /^cannot reach the Kubernetes API server at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
  });
});

describe('expose', () => {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'masq-vm', namespace: 'team-a', uid: 'u-1' },
    spec: { template: { spec: { domain: { devices: {} } } } },
  };

  it('reads the VM, then POSTs a Service selecting its launcher pod, owned by the VM', async () => {
    answer = (req) => (req.method === 'GET' ? { status: 200, body: vm } : { status: 201, body: req.body });
    const result = await run(['expose', 'vm', 'masq-vm', '--port', '8000', '--target-port', '80']);
    expect(result).toEqual({ stdout: 'Service masq-vm successfully created for vm masq-vm\n' });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /apis/kubevirt.io/v1/namespaces/team-a/virtualmachines/masq-vm',
      'POST /api/v1/namespaces/team-a/services',
    ]);
    expect(seen[1]?.body).toMatchObject({
      metadata: {
        name: 'masq-vm',
        namespace: 'team-a',
        ownerReferences: [{ kind: 'VirtualMachine', name: 'masq-vm', uid: 'u-1', controller: true }],
      },
      spec: {
        type: 'ClusterIP',
        selector: { 'vmi.kubevirt.io/id': 'masq-vm' },
        ports: [{ protocol: 'TCP', port: 8000, targetPort: 80 }],
      },
    });
  });

  it('says clearly when the VM is missing, the Service exists, the name is invalid, or RBAC refuses', async () => {
    answer = () => ({
      status: 404,
      body: {
        kind: 'Status',
        code: 404,
        reason: 'NotFound',
        details: { name: 'nope', kind: 'virtualmachines' },
      },
    });
    expect((await run(['expose', 'vm', 'nope', '--port=1'])).error?.message).toBe(
      'VirtualMachine "nope" not found in namespace "team-a"',
    );
    answer = (req) =>
      req.method === 'GET'
        ? { status: 200, body: vm }
        : { status: 409, body: { kind: 'Status', code: 409, reason: 'AlreadyExists' } };
    expect((await run(['expose', 'vm', 'masq-vm', '--port=1', '--name=web'])).error?.message).toBe(
      'Service "web" already exists in namespace "team-a": choose another name with --name, or delete it ' +
        '(kubectl delete service web -n team-a)',
    );
    answer = (req) =>
      req.method === 'GET'
        ? { status: 200, body: vm }
        : {
            status: 422,
            body: {
              kind: 'Status',
              code: 422,
              reason: 'Invalid',
              message:
                'Service "a.b" is invalid: metadata.name: Invalid value: "a.b": a DNS-1035 label must ...',
            },
          };
    expect((await run(['expose', 'vm', 'masq-vm', '--port=1', '--name=a.b'])).error?.message).toBe(
      'cannot create Service team-a/a.b: Service "a.b" is invalid: metadata.name: Invalid value: "a.b": a ' +
        'DNS-1035 label must ...; choose a valid Service name with --name',
    );
    answer = (req) =>
      req.method === 'GET'
        ? { status: 200, body: vm }
        : { status: 403, body: { kind: 'Status', code: 403, message: 'User "bob" cannot create services' } };
    expect((await run(['expose', 'vm', 'masq-vm', '--port=1'])).error?.message).toBe(
      'forbidden: you may not create Services in namespace "team-a": this needs verb "create" on "services" in ' +
        'the core API group (the edit or admin role has it; ask your cluster administrator)\n' +
        '  the API server said: User "bob" cannot create services',
    );
    answer = () => ({ status: 403, body: { kind: 'Status', code: 403, message: 'no' } });
    expect((await run(['expose', 'vmi', 'v', '--port=1'])).error?.message).toMatch(
      /^forbidden: you may not read VirtualMachineInstance team-a\/v \(to expose it\): this needs verb "get" on "virtualmachineinstances" in API group "kubevirt.io"/,
    );
  });

  it('fails before creating anything when the VM declares no ports and --port is missing', async () => {
    answer = () => ({ status: 200, body: vm });
    const result = await run(['expose', 'vm', 'masq-vm']);
    expect(result.error?.message).toMatch(/declares no ports; pass the port to serve with --port/);
    expect(seen.map((s) => s.method)).toEqual(['GET']);
  });
});

describe('vnc --proxy-only', () => {
  it('prints {"port": N}; a viewer there gets the guest’s RFB greeting and its bytes reach the guest', async () => {
    const running = run(['vnc', 'vm1', '--proxy-only']);
    const stdout = running.io.stdout as PassThrough;
    const line = await new Promise<string>((resolve) =>
      stdout.once('data', (c: Buffer) => resolve(c.toString())),
    );
    const { port } = JSON.parse(line) as { port: number };
    const socket = net.connect(port, '127.0.0.1');
    const greeting = await new Promise<string>((resolve) =>
      socket.once('data', (c: Buffer) => resolve(c.toString())),
    );
    expect(greeting).toBe('RFB 003.008\n');
    socket.write('RFB 003.008\n');
    for (let i = 0; i < 200 && vncReceived.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(Buffer.concat(vncReceived).toString()).toBe('RFB 003.008\n');
    socket.end();
    expect((await running).error).toBeUndefined();
  });
});
