// virt-api's HTTPS server over real TLS on the loopback: admission reviews, discovery, front-proxy authentication
// and certificate replacement without a restart.
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { silentLogger, type CertificateMaterial } from '@kubevirt-ts/runtime';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import { DEFAULT_CLUSTER_CONFIG } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionContext } from './admission/admitters.ts';
import { RequestHeaderAuthenticator } from './auth.ts';
import { VirtApiServer } from './server.ts';

const HOUR = 3_600_000;
let servingCa: CertificateAuthority;
let proxyCa: CertificateAuthority;
let server: VirtApiServer;
let port: number;
const reviews: { path: string; allowed: boolean }[] = [];

const context: AdmissionContext = {
  config: () => DEFAULT_CLUSTER_CONFIG,
  isPrivileged: () => false,
  instancetype: () => ({ state: 'missing' }),
  preference: () => ({ state: 'missing' }),
  now: () => new Date(),
};

async function servingMaterial(): Promise<CertificateMaterial> {
  const leaf = await issueCertificate(servingCa, {
    commonName: 'virt-api.kubevirt.svc',
    usages: ['server'],
    dnsNames: ['virt-api.kubevirt.svc'],
    validityMs: HOUR,
  });
  return { cert: leaf.certPem, key: leaf.keyPem, origin: 'test' };
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  serial: string;
}

function call(
  method: string,
  path: string,
  opts: { body?: unknown; client?: { cert: string; key: string }; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: servingCa.certPem,
        servername: 'virt-api.kubevirt.svc',
        agent: false,
        headers: { 'content-type': 'application/json', ...opts.headers },
        ...(opts.client ?? {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
            serial: (res.socket as TLSSocket).getPeerCertificate().serialNumber,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const vmiReview = (object: unknown) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachineInstance' },
    resource: { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances' },
    operation: 'CREATE',
    userInfo: { username: 'alice' },
    namespace: 'default',
    object,
  },
});

const goodVmi = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'g', namespace: 'default' },
  spec: { domain: { memory: { guest: '64Mi' }, devices: {} } },
};

beforeAll(async () => {
  servingCa = await createCertificateAuthority({ commonName: 'serving-ca', validityMs: 24 * HOUR });
  proxyCa = await createCertificateAuthority({ commonName: 'front-proxy-ca', validityMs: 24 * HOUR });
  const authenticator = new RequestHeaderAuthenticator(silentLogger());
  authenticator.update({
    caPem: proxyCa.certPem,
    allowedNames: ['front-proxy-client'],
    usernameHeaders: ['X-Remote-User'],
    groupHeaders: ['X-Remote-Group'],
    extraHeaderPrefixes: ['X-Remote-Extra-'],
  });
  server = new VirtApiServer({
    port: 0,
    host: '127.0.0.1',
    log: silentLogger(),
    context,
    authenticator,
    version: '1.2.3',
    onReview: (path, _s, allowed) => reviews.push({ path, allowed }),
  });
  await expect(server.listen()).rejects.toThrow(/before it has a serving certificate/);
  server.setCertificate(await servingMaterial());
  port = await server.listen();
});

afterAll(() => server.close());

describe('admission over HTTPS', () => {
  it('answers a mutating review with a patch and a validating review with causes', async () => {
    const mutated = await call('POST', '/virtualmachineinstances-mutate', { body: vmiReview(goodVmi) });
    expect(mutated.status).toBe(200);
    expect(mutated.body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-1', allowed: true, patchType: 'JSONPatch' },
    });

    const bad = { ...goodVmi, spec: { ...goodVmi.spec, bogus: 1 } };
    const refused = await call('POST', '/virtualmachineinstances-validate', { body: vmiReview(bad) });
    expect(refused.body).toMatchObject({
      response: {
        allowed: false,
        status: { code: 422, reason: 'Invalid', details: { causes: [{ field: 'spec.bogus' }] } },
      },
    });
    expect(reviews.slice(-2)).toEqual([
      { path: '/virtualmachineinstances-mutate', allowed: true },
      { path: '/virtualmachineinstances-validate', allowed: false },
    ]);
  });

  it('answers 400 to something that is not an AdmissionReview, 405 to a GET, 404 elsewhere', async () => {
    expect((await call('POST', '/virtualmachines-validate', { body: { kind: 'Pod' } })).status).toBe(400);
    expect((await call('GET', '/virtualmachines-validate')).status).toBe(405);
    expect((await call('GET', '/nothing-here')).body).toMatchObject({ kind: 'Status', code: 404 });
  });
});

describe('subresources.kubevirt.io discovery', () => {
  it('serves the group, the version resources and OpenAPI without authentication', async () => {
    const list = await call('GET', '/apis');
    expect(list.body).toMatchObject({ kind: 'APIGroupList', groups: [{ name: 'subresources.kubevirt.io' }] });
    const resources = await call('GET', '/apis/subresources.kubevirt.io/v1');
    expect(resources.status).toBe(200);
    const names = (resources.body.resources as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining(['virtualmachines/start', 'virtualmachineinstances/console']),
    );
    expect((await call('GET', '/openapi/v2')).body).toMatchObject({ swagger: '2.0' });
    const v3 = await call('GET', '/openapi/v3');
    const [entry] = Object.values(v3.body.paths as Record<string, { serverRelativeURL: string }>);
    expect((await call('GET', entry?.serverRelativeURL ?? '')).body).toMatchObject({ openapi: '3.0.0' });
  });

  it('answers version and healthz only to the front proxy', async () => {
    const anonymous = await call('GET', '/apis/subresources.kubevirt.io/v1/version');
    expect(anonymous.status).toBe(401);
    const proxy = await issueCertificate(proxyCa, {
      commonName: 'front-proxy-client',
      usages: ['client'],
      validityMs: HOUR,
    });
    const client = { cert: proxy.certPem, key: proxy.keyPem };
    const headers = { 'X-Remote-User': 'alice' };
    const version = await call('GET', '/apis/subresources.kubevirt.io/v1/version', { client, headers });
    expect(version).toMatchObject({ status: 200, body: { gitVersion: 'v1.2.3' } });
    expect((await call('GET', '/apis/subresources.kubevirt.io/v1/healthz', { client, headers })).status).toBe(
      200,
    );
    expect((await call('GET', '/apis/subresources.kubevirt.io/v1/version', { client })).status).toBe(401);

    const impostor = await issueCertificate(proxyCa, {
      commonName: 'someone',
      usages: ['client'],
      validityMs: HOUR,
    });
    const wrongName = await call('GET', '/apis/subresources.kubevirt.io/v1/version', {
      client: { cert: impostor.certPem, key: impostor.keyPem },
      headers,
    });
    expect(wrongName.status).toBe(403);
    const stranger = await issueCertificate(servingCa, {
      commonName: 'front-proxy-client',
      usages: ['client'],
      validityMs: HOUR,
    });
    const otherCa = await call('GET', '/apis/subresources.kubevirt.io/v1/version', {
      client: { cert: stranger.certPem, key: stranger.keyPem },
      headers,
    });
    expect(otherCa.status).toBe(401);
  });
});

describe('certificate replacement', () => {
  it('serves a new certificate from the next connection on, without restarting', async () => {
    const before = await call('GET', '/apis');
    const next = await servingMaterial();
    server.setCertificate(next);
    const after = await call('GET', '/apis');
    expect(after.status).toBe(200);
    expect(after.serial).not.toBe(before.serial);
    expect(after.serial).toBe(new (await import('node:crypto')).X509Certificate(next.cert).serialNumber);
  });
});
