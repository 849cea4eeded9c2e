// The subresource endpoints in-process, over real TLS: virt-api's HTTPS server with front-proxy authentication, an
// in-memory VM/VMI store, and a real handler.v1 server (packages/proto's serveHandler, mutual TLS with certificates
// from one CA, as virt-controller issues them) that echoes console/VNC bytes and records commands. What Kubernetes
// itself adds (RBAC, the aggregator, JSON patch on stored objects) is covered by test/subresources.test.ts.
import dgram from 'node:dgram';
import https from 'node:https';
import net from 'node:net';
import { serveHandler, RpcError, type RunningServer } from '@kubevirt-ts/proto';
import {
  silentLogger,
  type CertificateListener,
  type CertificateMaterial,
  type CertificateSource,
} from '@kubevirt-ts/runtime';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import {
  DEFAULT_CLUSTER_CONFIG,
  type VirtualMachine,
  type VirtualMachineInstance,
} from '@kubevirt-ts/schema';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, type ClientOptions } from 'ws';
import type { AdmissionContext } from '../admission/admitters.ts';
import { RequestHeaderAuthenticator } from '../auth.ts';
import { VirtApiServer } from '../server.ts';
import { SubresourceApi } from './api.ts';
import type { AccessRequest, Authorizer } from './authorizer.ts';
import { HandlerDialer, type HandlerEndpoint } from './handler.ts';
import { MemoryStore } from './test-support.ts';
import { PLAIN_STREAM_PROTOCOL } from './websocket.ts';

const HOUR = 3_600_000;
const NS = 'ns';
const BASE = `/apis/subresources.kubevirt.io/v1/namespaces/${NS}`;

class StaticCertificates implements CertificateSource {
  readonly description = 'test certificates';
  material: CertificateMaterial | undefined;
  constructor(material?: CertificateMaterial) {
    this.material = material;
  }
  current() {
    return this.material;
  }
  lastError() {
    return this.material === undefined ? 'not issued yet' : undefined;
  }
  onChange(_listener: CertificateListener) {
    return () => {};
  }
  start() {}
  stop() {
    return Promise.resolve();
  }
}

let servingCa: CertificateAuthority;
let proxyClient: { cert: string; key: string };
let server: VirtApiServer;
let port: number;
let handler: RunningServer;
let store: MemoryStore;
let handlerCerts: StaticCertificates;
let otherCaClient: CertificateMaterial;
const access: AccessRequest[] = [];
let allow: (r: AccessRequest) => boolean = () => true;
const commands: { rpc: string; namespace: string; name: string; uid: string }[] = [];

const authorizer: Authorizer = {
  authorize(request) {
    access.push(request);
    return Promise.resolve(allow(request) ? { allowed: true } : { allowed: false, reason: 'no RBAC rule' });
  },
};

beforeAll(async () => {
  servingCa = await createCertificateAuthority({ commonName: 'serving-ca', validityMs: 24 * HOUR });
  const proxyCa = await createCertificateAuthority({ commonName: 'front-proxy-ca', validityMs: 24 * HOUR });
  const kubevirtCa = await createCertificateAuthority({ commonName: 'kubevirt-ca', validityMs: 24 * HOUR });
  const strangerCa = await createCertificateAuthority({ commonName: 'stranger-ca', validityMs: 24 * HOUR });
  const proxy = await issueCertificate(proxyCa, {
    commonName: 'front-proxy-client',
    usages: ['client'],
    validityMs: HOUR,
  });
  proxyClient = { cert: proxy.certPem, key: proxy.keyPem };

  const handlerServing = await issueCertificate(kubevirtCa, {
    commonName: 'kubevirt.io:system:node:virt-handler',
    usages: ['server', 'client'],
    dnsNames: ['virt-handler'],
    validityMs: HOUR,
  });
  const apiClient = await issueCertificate(kubevirtCa, {
    commonName: 'kubevirt.io:system:client:virt-handler',
    usages: ['client'],
    validityMs: HOUR,
  });
  const stranger = await issueCertificate(strangerCa, {
    commonName: 'kubevirt.io:system:client:virt-handler',
    usages: ['client'],
    validityMs: HOUR,
  });
  otherCaClient = {
    cert: stranger.certPem,
    key: stranger.keyPem,
    ca: kubevirtCa.certPem,
    origin: 'stranger',
  };
  handlerCerts = new StaticCertificates({
    cert: apiClient.certPem,
    key: apiClient.keyPem,
    ca: kubevirtCa.certPem,
    origin: 'test',
  });

  const record = (rpc: string) => (ref: { namespace: string; name: string; uid: string }) => {
    commands.push({ rpc, ...ref });
    return { success: true, message: '' };
  };
  const echo = (ref: { uid: string }, stream: NodeJS.ReadWriteStream & { destroy(e?: Error): void }) => {
    if (ref.uid !== 'uid-1') {
      throw new RpcError(5, `VMI ns/vm1 with UID ${ref.uid} does not run on this node`);
    }
    stream.pipe(stream);
  };
  handler = await serveHandler(
    {
      host: '127.0.0.1',
      port: 0,
      tls: { key: handlerServing.keyPem, cert: handlerServing.certPem, ca: kubevirtCa.certPem },
    },
    {
      pause: record('Pause'),
      unpause: record('Unpause'),
      softReboot: record('SoftReboot'),
      guestOSInfo: (ref) => {
        commands.push({ rpc: 'GuestOSInfo', ...ref });
        return { success: true, message: '', guestOsInfoJson: Buffer.from('{"name":"busybox","id":"test"}') };
      },
      console: (vmi, stream) => echo(vmi, stream),
      vnc: (vmi, stream) => {
        stream.write(Buffer.from('RFB 003.008\n'));
        echo(vmi, stream);
      },
    },
    { shutdownGraceMs: 1_000 },
  );

  const endpoint: HandlerEndpoint = {
    pod: 'virt-handler-x',
    node: 'node-1',
    host: '127.0.0.1',
    port: handler.port ?? 0,
  };
  store = new MemoryStore();
  const authenticator = new RequestHeaderAuthenticator(silentLogger());
  authenticator.update({
    caPem: proxyCa.certPem,
    allowedNames: ['front-proxy-client'],
    usernameHeaders: ['X-Remote-User'],
    groupHeaders: ['X-Remote-Group'],
    extraHeaderPrefixes: ['X-Remote-Extra-'],
  });
  const context: AdmissionContext = {
    config: () => DEFAULT_CLUSTER_CONFIG,
    isPrivileged: () => false,
    instancetype: () => ({ state: 'missing' }),
    preference: () => ({ state: 'missing' }),
    now: () => new Date(),
  };
  const subresources = new SubresourceApi({
    store,
    log: silentLogger(),
    authorizer,
    locator: {
      find: (node) =>
        node === 'node-1' ? Promise.resolve(endpoint) : Promise.reject(new Error(`no handler on ${node}`)),
    },
    dialer: new HandlerDialer({ certificates: handlerCerts, log: silentLogger() }),
  });
  server = new VirtApiServer({
    port: 0,
    host: '127.0.0.1',
    log: silentLogger(),
    context,
    authenticator,
    version: '1.0.0',
    subresources,
  });
  const leaf = await issueCertificate(servingCa, {
    commonName: 'virt-api',
    usages: ['server'],
    dnsNames: ['virt-api.kubevirt.svc'],
    validityMs: HOUR,
  });
  server.setCertificate({ cert: leaf.certPem, key: leaf.keyPem, origin: 'test' });
  port = await server.listen();
});

afterAll(async () => {
  await server?.close();
  await handler?.shutdown(100);
});

function vm(runStrategy: string, status?: VirtualMachine['status']): VirtualMachine {
  return {
    metadata: { name: 'vm1', namespace: NS, uid: 'vm-uid' },
    spec: { runStrategy, template: { spec: { domain: { devices: {} } } } } as VirtualMachine['spec'],
    ...(status === undefined ? {} : { status }),
  };
}

function vmi(
  phase: string,
  conditions: { type: string; status: 'True' | 'False' }[] = [],
): VirtualMachineInstance {
  return {
    metadata: { name: 'vm1', namespace: NS, uid: 'uid-1' },
    spec: { domain: { devices: {} } },
    status: { phase: phase as 'Running', nodeName: 'node-1', conditions },
  };
}

beforeEach(() => {
  store.vms.clear();
  store.vmis.clear();
  store.patches.length = 0;
  store.beforeVMPatch = undefined;
  access.length = 0;
  commands.length = 0;
  allow = () => true;
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function call(
  method: string,
  path: string,
  opts: { body?: unknown; proxy?: boolean; user?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: servingCa.certPem,
        servername: 'virt-api.kubevirt.svc',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'X-Remote-User': opts.user ?? 'alice',
          // One header per group, as kube-apiserver sends them.
          'X-Remote-Group': ['team-a', 'system:authenticated'],
          'X-Remote-Extra-Scopes': ['one', 'two'],
        },
        ...(opts.proxy === false ? {} : proxyClient),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  });
}

describe('start, stop, restart', () => {
  it('starts a Halted VM: 202 and runStrategy Always; a second start is a 409 saying why', async () => {
    store.vms.set(`${NS}/vm1`, vm('Halted'));
    const started = await call('PUT', `${BASE}/virtualmachines/vm1/start`);
    expect(started.status).toBe(202);
    expect(store.vms.get(`${NS}/vm1`)?.spec.runStrategy).toBe('Always');
    expect(access[0]).toEqual({
      user: 'alice',
      groups: ['team-a', 'system:authenticated'],
      extra: { scopes: ['one', 'two'] },
      namespace: NS,
      verb: 'update',
      resource: 'virtualmachines',
      subresource: 'start',
      name: 'vm1',
    });

    const again = await call('PUT', `${BASE}/virtualmachines/vm1/start`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Conflict',
      code: 409,
      details: { name: 'vm1', group: 'kubevirt.io', kind: 'virtualmachine' },
    });
    expect(again.body.message).toBe(
      'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": Always does not support manual start requests (the VM controller keeps it running)',
    );
  });

  it('stops a Manual VM with a Stop request for its VMI, with the grace period on the VMI', async () => {
    store.vms.set(`${NS}/vm1`, vm('Manual', { printableStatus: 'Running' }));
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const stopped = await call('PUT', `${BASE}/virtualmachines/vm1/stop`, { body: { gracePeriod: 0 } });
    expect(stopped.status).toBe(202);
    expect(store.vms.get(`${NS}/vm1`)?.status?.stateChangeRequests).toEqual([
      { action: 'Stop', uid: 'uid-1' },
    ]);
    expect(store.vmis.get(`${NS}/vm1`)?.spec.terminationGracePeriodSeconds).toBe(0);
    expect(store.patches.map((p) => [p.kind, p.options.status === true])).toEqual([
      ['vmi', false],
      ['vm', true],
    ]);
  });

  it('writes nothing on a dry run, but still answers what would happen', async () => {
    store.vms.set(`${NS}/vm1`, vm('Always'));
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const restarted = await call('PUT', `${BASE}/virtualmachines/vm1/restart?dryRun=All`);
    expect(restarted.status).toBe(202);
    expect(store.patches.map((p) => p.options.dryRun)).toEqual([true]);
    expect(store.vms.get(`${NS}/vm1`)?.status).toBeUndefined();
  });

  it('answers 409 when the VM changes between read and write, and restores the grace period', async () => {
    store.vms.set(`${NS}/vm1`, vm('Always'));
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    store.beforeVMPatch = () => {
      const current = store.vms.get(`${NS}/vm1`);
      if (current !== undefined) current.spec.runStrategy = 'Manual';
    };
    const stopped = await call('PUT', `${BASE}/virtualmachines/vm1/stop`, { body: { gracePeriod: 3 } });
    expect(stopped.status).toBe(409);
    expect(String(stopped.body.message)).toContain(
      'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1"',
    );
    expect(store.vmis.get(`${NS}/vm1`)?.spec.terminationGracePeriodSeconds).toBeUndefined();
  });

  it('answers 404 for a VM that does not exist and 400 for a bad body', async () => {
    const missing = await call('PUT', `${BASE}/virtualmachines/nope/stop`);
    expect(missing).toMatchObject({
      status: 404,
      body: { reason: 'NotFound', message: 'virtualmachine.kubevirt.io "nope" not found' },
    });
    store.vms.set(`${NS}/vm1`, vm('Halted'));
    const bad = await call('PUT', `${BASE}/virtualmachines/vm1/start`, { body: { paused: 'yes' } });
    expect(bad).toMatchObject({
      status: 400,
      body: { reason: 'BadRequest', message: 'paused must be true or false' },
    });
    expect(store.vms.get(`${NS}/vm1`)?.spec.runStrategy).toBe('Halted');
  });
});

describe('authorization and authentication', () => {
  it('answers 403 naming user, verb, resource and namespace when the SubjectAccessReview denies', async () => {
    store.vms.set(`${NS}/vm1`, vm('Always'));
    allow = (r) => r.verb === 'get';
    const denied = await call('PUT', `${BASE}/virtualmachines/vm1/stop`, { user: 'viewer' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({
      reason: 'Forbidden',
      details: { name: 'vm1', group: 'subresources.kubevirt.io', kind: 'virtualmachines' },
    });
    expect(denied.body.message).toBe(
      'virtualmachines.subresources.kubevirt.io "vm1" is forbidden: User "viewer" cannot update resource ' +
        '"virtualmachines/stop" in API group "subresources.kubevirt.io" in the namespace "ns": no RBAC rule',
    );
    expect(store.vms.get(`${NS}/vm1`)?.spec.runStrategy).toBe('Always');
  });

  it('answers 401 to anyone but the front proxy, before asking for authorization', async () => {
    const anonymous = await call('PUT', `${BASE}/virtualmachines/vm1/stop`, { proxy: false });
    expect(anonymous.status).toBe(401);
    expect(access).toEqual([]);
  });

  it('answers 404 for subresources kubevirt-ts does not serve, 405 for a wrong method', async () => {
    expect((await call('PUT', `${BASE}/virtualmachines/vm1/migrate`)).status).toBe(404);
    expect((await call('GET', `${BASE}/virtualmachines/vm1/start`)).status).toBe(405);
  });
});

describe('commands through virt-handler', () => {
  it('pauses a running VMI through the handler, naming it by UID', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const paused = await call('PUT', `${BASE}/virtualmachineinstances/vm1/pause`, { body: {} });
    expect(paused.status).toBe(200);
    expect(commands).toEqual([{ rpc: 'Pause', namespace: NS, name: 'vm1', uid: 'uid-1' }]);
    expect(access[0]).toMatchObject({
      verb: 'update',
      resource: 'virtualmachineinstances',
      subresource: 'pause',
    });
  });

  it('validates without calling the handler on a dry run', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    expect(
      (await call('PUT', `${BASE}/virtualmachineinstances/vm1/softreboot`, { body: { dryRun: ['All'] } }))
        .status,
    ).toBe(200);
    expect(commands).toEqual([]);
  });

  it('refuses with 409: pause of a paused VMI, unpause of a running one, guestosinfo without agent', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running', [{ type: 'Paused', status: 'True' }]));
    const twice = await call('PUT', `${BASE}/virtualmachineinstances/vm1/pause`);
    expect(twice).toMatchObject({ status: 409 });
    expect(twice.body.message).toContain('VMI is already paused');
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    expect((await call('PUT', `${BASE}/virtualmachineinstances/vm1/unpause`)).body.message).toContain(
      'VMI is not paused',
    );
    expect((await call('GET', `${BASE}/virtualmachineinstances/vm1/guestosinfo`)).body.message).toContain(
      'VMI does not have guest agent connected',
    );
    store.vmis.set(`${NS}/vm1`, vmi('Scheduling'));
    expect((await call('PUT', `${BASE}/virtualmachineinstances/vm1/pause`)).body.message).toContain(
      'VM is not running',
    );
    expect(commands).toEqual([]);
  });

  it('returns the guest agent info the handler reports', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running', [{ type: 'AgentConnected', status: 'True' }]));
    const info = await call('GET', `${BASE}/virtualmachineinstances/vm1/guestosinfo`);
    expect(info).toEqual({ status: 200, body: { name: 'busybox', id: 'test' } });
    expect(access[0]).toMatchObject({ verb: 'get', subresource: 'guestosinfo' });
  });

  it('says when the handler refuses virt-api’s client certificate or none is there yet', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const good = handlerCerts.material;
    try {
      handlerCerts.material = otherCaClient;
      const refused = await call('PUT', `${BASE}/virtualmachineinstances/vm1/pause`);
      expect(refused.status).toBeGreaterThanOrEqual(500);
      expect(String(refused.body.message)).toContain('virt-handler virt-handler-x on node node-1');
      handlerCerts.material = undefined;
      const none = await call('PUT', `${BASE}/virtualmachineinstances/vm1/pause`);
      expect(none.status).toBe(503);
      expect(none.body.message).toContain('virt-api has no client certificate for virt-handler yet');
    } finally {
      handlerCerts.material = good;
    }
    expect(commands).toEqual([]);
  });
});

function openStream(
  sub: string,
  name = 'vm1',
  resource: 'virtualmachineinstances' | 'virtualmachines' = 'virtualmachineinstances',
): Promise<{ ws: WebSocket } | { status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `wss://127.0.0.1:${port}${BASE}/${resource}/${name}/${sub}`,
      [PLAIN_STREAM_PROTOCOL],
      // ws hands TLS options through to tls.connect, servername included (its types omit it).
      {
        ca: servingCa.certPem,
        ...({ servername: 'virt-api.kubevirt.svc' } as ClientOptions),
        ...proxyClient,
        headers: { 'X-Remote-User': 'alice', 'X-Remote-Group': 'team-a' },
      },
    );
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
        }),
      );
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(data)));
}

describe('console and VNC over websockets', () => {
  it('carries console bytes both ways with the plain.kubevirt.io subprotocol', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const opened = await openStream('console');
    if (!('ws' in opened)) throw new Error(`console refused: ${JSON.stringify(opened)}`);
    const { ws } = opened;
    expect(ws.protocol).toBe(PLAIN_STREAM_PROTOCOL);
    const reply = nextMessage(ws);
    ws.send(Buffer.from('hello guest\n'));
    expect((await reply).toString()).toBe('hello guest\n');
    expect(access[0]).toMatchObject({
      verb: 'get',
      resource: 'virtualmachineinstances',
      subresource: 'console',
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(1000);
    expect(await closed).toBe(1000);
  });

  it('starts VNC with the server’s RFB greeting', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    const opened = await openStream('vnc');
    if (!('ws' in opened)) throw new Error(`vnc refused: ${JSON.stringify(opened)}`);
    expect((await nextMessage(opened.ws)).toString()).toBe('RFB 003.008\n');
    opened.ws.close();
  });

  it('refuses the upgrade with a Status when the VMI is not running, does not exist, or access is denied', async () => {
    store.vmis.set(`${NS}/vm1`, vmi('Scheduling'));
    expect(await openStream('console')).toEqual({
      status: 400,
      body: expect.objectContaining({ reason: 'BadRequest', message: 'VMI is not running' }) as unknown,
    });
    expect(await openStream('console', 'ghost')).toMatchObject({ status: 404 });
    store.vmis.set(`${NS}/vm1`, vmi('Running'));
    allow = () => false;
    expect(await openStream('vnc')).toMatchObject({ status: 403, body: { reason: 'Forbidden' } });
  });

  it('closes the websocket with 1011 and the handler’s reason when the handler refuses the stream', async () => {
    const stale = vmi('Running');
    stale.metadata = { ...stale.metadata, uid: 'uid-old' };
    store.vmis.set(`${NS}/vm1`, stale);
    const opened = await openStream('console');
    if (!('ws' in opened)) throw new Error('expected the upgrade to succeed');
    const [code, reason] = await new Promise<[number, string]>((resolve) =>
      opened.ws.once('close', (c, r) => resolve([c, r.toString()])),
    );
    expect(code).toBe(1011);
    expect(reason).toBe('NOT_FOUND: VMI ns/vm1 with UID uid-old does not run on this node');
  });
});

describe('portforward over websockets, dialed by virt-api itself', () => {
  /** A Running VMI whose pod network interface reports the loopback, so a real local server stands in for the guest. */
  function forwardable(binding: Record<string, unknown> = { bridge: {} }): VirtualMachineInstance {
    const running = vmi('Running');
    running.metadata = { ...running.metadata, ownerReferences: [{ uid: 'vm-uid' } as never] };
    running.spec = {
      domain: { devices: { interfaces: [{ name: 'default', ...binding }] } },
      networks: [{ name: 'default', pod: {} }],
    };
    running.status = { ...running.status, interfaces: [{ name: 'default', ipAddress: '127.0.0.1' }] };
    return running;
  }

  async function tcpEcho(): Promise<{ port: number; close: () => void }> {
    const guest = net.createServer((socket) => {
      socket.write('hello from the guest\n');
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => guest.listen(0, '127.0.0.1', resolve));
    return { port: (guest.address() as net.AddressInfo).port, close: () => guest.close() };
  }

  it('carries one TCP connection to the VMI’s pod address, authorized as get on virtualmachineinstances/portforward', async () => {
    const guest = await tcpEcho();
    try {
      store.vmis.set(`${NS}/vm1`, forwardable());
      const opened = await openStream(`portforward/${guest.port}`);
      if (!('ws' in opened)) throw new Error(`portforward refused: ${JSON.stringify(opened)}`);
      expect((await nextMessage(opened.ws)).toString()).toBe('hello from the guest\n');
      const reply = nextMessage(opened.ws);
      opened.ws.send(Buffer.from('ping'));
      expect((await reply).toString()).toBe('ping');
      expect(access[0]).toMatchObject({
        verb: 'get',
        resource: 'virtualmachineinstances',
        subresource: 'portforward',
        name: 'vm1',
      });
      const closed = new Promise<number>((resolve) => opened.ws.once('close', (code) => resolve(code)));
      opened.ws.close(1000);
      expect(await closed).toBe(1000);
    } finally {
      guest.close();
    }
  });

  it('reaches the VMI through its VM, and closes the websocket when the guest closes the connection', async () => {
    const guest = net.createServer((socket) => socket.end('bye\n'));
    await new Promise<void>((resolve) => guest.listen(0, '127.0.0.1', resolve));
    try {
      store.vms.set(`${NS}/vm1`, vm('Always', { created: true }));
      store.vmis.set(`${NS}/vm1`, forwardable());
      const port = (guest.address() as net.AddressInfo).port;
      const opened = await openStream(`portforward/${port}/tcp`, 'vm1', 'virtualmachines');
      if (!('ws' in opened)) throw new Error(`portforward refused: ${JSON.stringify(opened)}`);
      const closed = new Promise<number>((resolve) => opened.ws.once('close', (code) => resolve(code)));
      expect((await nextMessage(opened.ws)).toString()).toBe('bye\n');
      expect(await closed).toBe(1000);
      expect(access[0]).toMatchObject({ resource: 'virtualmachines', subresource: 'portforward' });
    } finally {
      guest.close();
    }
  });

  it('carries UDP datagrams, one websocket message each', async () => {
    const guest = dgram.createSocket('udp4');
    guest.on('message', (msg, from) =>
      guest.send(Buffer.from(`echo ${msg.toString()}`), from.port, from.address),
    );
    await new Promise<void>((resolve) => guest.bind(0, '127.0.0.1', resolve));
    try {
      store.vmis.set(`${NS}/vm1`, forwardable());
      const opened = await openStream(`portforward/${guest.address().port}/udp`);
      if (!('ws' in opened)) throw new Error(`portforward refused: ${JSON.stringify(opened)}`);
      const reply = nextMessage(opened.ws);
      opened.ws.send(Buffer.from('query'));
      expect((await reply).toString()).toBe('echo query');
      opened.ws.close();
    } finally {
      guest.close();
    }
  });

  it('refuses with a Status: stopped VM (409), VMI not running (409), bad port or protocol (400), denied (403)', async () => {
    store.vms.set(`${NS}/vm1`, vm('Halted', { created: false }));
    expect(await openStream('portforward/22', 'vm1', 'virtualmachines')).toEqual({
      status: 409,
      body: expect.objectContaining({
        reason: 'Conflict',
        message: 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": VMI is not started',
      }) as unknown,
    });
    store.vmis.set(`${NS}/vm1`, vmi('Scheduling'));
    expect(await openStream('portforward/22')).toMatchObject({
      status: 409,
      body: { message: expect.stringContaining('VMI is not running (phase Scheduling)') as unknown },
    });
    store.vmis.set(`${NS}/vm1`, forwardable());
    expect(await openStream('portforward/70000')).toMatchObject({
      status: 400,
      body: { message: 'port must be a number from 1 to 65535, got "70000"' },
    });
    expect(await openStream('portforward/22/sctp')).toMatchObject({
      status: 400,
      body: { message: 'protocol must be tcp or udp, got "sctp"' },
    });
    allow = () => false;
    expect(await openStream('portforward/22')).toMatchObject({
      status: 403,
      body: {
        message: expect.stringContaining(
          'cannot get resource "virtualmachineinstances/portforward"',
        ) as unknown,
      },
    });
  });

  it('answers 500 naming the masquerade port list when the dial is refused', async () => {
    const closedPort = await tcpEcho();
    closedPort.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    store.vmis.set(`${NS}/vm1`, forwardable({ masquerade: {}, ports: [{ name: 'http', port: 80 }] }));
    const refused = await openStream(`portforward/${closedPort.port}`);
    expect(refused).toMatchObject({ status: 500, body: { reason: 'InternalError' } });
    if ('ws' in refused) throw new Error('expected the upgrade to be refused');
    const message = String(refused.body.message);
    expect(message).toContain(`dialing VM: TCP port ${closedPort.port} of the VMI at 127.0.0.1`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).toContain('forwards only the ports in spec.domain.devices.interfaces[0].ports (80/TCP)');
  });
});
