import { afterEach, describe, expect, it } from 'vitest';
import { HealthServer } from './health.ts';
import { silentLogger } from './logger.ts';
import { createMetricsRegistry, counter } from './metrics.ts';

const servers: HealthServer[] = [];

async function start(checkTimeoutMs = 2000) {
  const registry = createMetricsRegistry({ service: 'virt-test', version: '9.9.9' });
  const server = new HealthServer({
    port: 0,
    host: '127.0.0.1',
    registry,
    log: silentLogger(),
    checkTimeoutMs,
  });
  servers.push(server);
  const port = await server.listen();
  const get = async (path: string, method = 'GET') => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  };
  return { server, registry, get, port };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('HealthServer', () => {
  it('answers /livez without consulting readiness checks', async () => {
    const { server, get } = await start();
    server.addReadinessCheck('broken', () => false);
    expect(await get('/livez')).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('is ready when every check passes, and lists them on ?verbose', async () => {
    const { server, get } = await start();
    server.addReadinessCheck('informers-synced', () => true);
    server.addReadinessCheck('grpc', async () => Promise.resolve(true));
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'readyz check passed\n' });
    const verbose = await get('/readyz?verbose');
    expect(verbose.body).toBe('[+]informers-synced ok\n[+]grpc ok\nreadyz check passed\n');
  });

  it('shows what a passing check has to say on ?verbose, and the detail of a failing one as its reason', async () => {
    const { server, get } = await start();
    server.addReadinessCheck('leader-election', () => ({ ok: true, detail: 'standby; leader is pod-a' }));
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'readyz check passed\n' });
    expect((await get('/readyz?verbose')).body).toBe(
      '[+]leader-election ok: standby; leader is pod-a\nreadyz check passed\n',
    );
    server.addReadinessCheck('caches', () => ({ ok: false, detail: 'vmi informer not synced' }));
    expect((await get('/readyz')).body).toContain('[-]caches failed: vmi informer not synced');
  });

  it('reports each failing check with its reason, including throwing and hanging ones', async () => {
    const { server, get } = await start(50);
    server.addReadinessCheck('leader', () => true);
    server.addReadinessCheck('informers-synced', () => 'vmi informer not synced');
    server.addReadinessCheck('throws', () => {
      throw new Error('boom');
    });
    server.addReadinessCheck('hangs', () => new Promise<boolean>(() => {}));
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.split('\n')).toEqual([
      '[+]leader ok',
      '[-]informers-synced failed: vmi informer not synced',
      '[-]throws failed: boom',
      '[-]hangs failed: no answer within 50 ms',
      'readyz check failed',
      '',
    ]);
  });

  it('fails readiness once shutdown begins, while liveness stays ok', async () => {
    const { server, get } = await start();
    server.addReadinessCheck('ok', () => true);
    server.setShuttingDown();
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toContain('[-]shutdown failed: shutting down');
    expect((await get('/livez')).status).toBe(200);
  });

  it('unregisters checks and refuses duplicates', async () => {
    const { server, get } = await start();
    const remove = server.addReadinessCheck('x', () => false);
    expect(() => server.addReadinessCheck('x', () => true)).toThrow(/already registered/);
    remove();
    expect((await get('/readyz')).status).toBe(200);
  });

  it('serves metrics: default process metrics, build info and our kubevirt_ metrics', async () => {
    const { registry, get } = await start();
    counter(registry, { name: 'kubevirt_test_things_total', help: 'things' }).inc(3);
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    expect(res.body).toContain('process_cpu_user_seconds_total');
    expect(res.body).toContain('nodejs_eventloop_lag_seconds');
    expect(res.body).toMatch(
      /kubevirt_build_info\{service="virt-test",version="9\.9\.9",node_version="v[\d.]+"\} 1/,
    );
    expect(res.body).toContain('kubevirt_test_things_total 3');
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    const { get } = await start();
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/livez', 'POST')).status).toBe(405);
    expect((await get('/livez', 'HEAD')).status).toBe(200);
  });

  it('explains a port that is in use', async () => {
    const { port } = await start();
    const other = new HealthServer({
      port,
      host: '127.0.0.1',
      registry: createMetricsRegistry({ service: 's', version: 'v', defaultMetrics: false }),
      log: silentLogger(),
    });
    await expect(other.listen()).rejects.toThrow(
      new RegExp(`cannot serve health/metrics on 127.0.0.1:${port}: .*EADDRINUSE.*--health-port`),
    );
  });
});
