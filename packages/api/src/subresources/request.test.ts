import { describe, expect, it } from 'vitest';
import {
  dryRunOptions,
  parseBody,
  parseSubresourcePath,
  portForwardTarget,
  rbacSubresource,
  rbacVerb,
  restartOptions,
  routeOf,
  startOptions,
  stopOptions,
} from './request.ts';
import { errorOf } from './test-support.ts';

const base = '/apis/subresources.kubevirt.io/v1/namespaces';
const q = (s = '') => new URLSearchParams(s);

describe('parseSubresourcePath', () => {
  it('reads namespace, resource, name and subresource', () => {
    expect(parseSubresourcePath(`${base}/ns1/virtualmachines/vm-a/start`)).toEqual({
      namespace: 'ns1',
      resource: 'virtualmachines',
      name: 'vm-a',
      subresource: 'start',
    });
    expect(parseSubresourcePath(`${base}/ns1/virtualmachineinstances/v/vnc/screenshot`)?.subresource).toBe(
      'vnc/screenshot',
    );
    expect(parseSubresourcePath(`${base}/n%73/virtualmachines/a%2Eb/stop`)).toMatchObject({
      namespace: 'ns',
      name: 'a.b',
    });
  });

  it('refuses other shapes', () => {
    for (const path of [
      `${base}/ns1/virtualmachines/vm-a`,
      `${base}/ns1/pods/p/start`,
      `${base}/ns1/virtualmachines//start`,
      `${base}/ns1/virtualmachines/vm/start/`,
      `${base}/%E0%A4%A/virtualmachines/vm/start`,
      '/apis/subresources.kubevirt.io/v1/version',
      '/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/vm/start',
    ]) {
      expect(parseSubresourcePath(path), path).toBeUndefined();
    }
  });
});

describe('rbacVerb', () => {
  it('maps HTTP methods as kube-apiserver does for a named object', () => {
    expect(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => rbacVerb(m))).toEqual([
      'get',
      'get',
      'update',
      'create',
      'patch',
      'delete',
      undefined,
    ]);
  });
});

describe('routeOf', () => {
  const path = (resource: 'virtualmachines' | 'virtualmachineinstances', subresource: string) => ({
    namespace: 'ns',
    resource,
    name: 'x',
    subresource,
  });

  it('serves start with PUT and console with a websocket GET', () => {
    expect(routeOf(path('virtualmachines', 'start'), 'put', false)).toBe('virtualmachines/start');
    expect(routeOf(path('virtualmachineinstances', 'console'), 'GET', true)).toBe(
      'virtualmachineinstances/console',
    );
  });

  it('answers 404 for what is not served, 405 for a wrong method, 400 for a stream without upgrade', () => {
    const missing = errorOf(() => routeOf(path('virtualmachines', 'migrate'), 'PUT', false));
    expect(missing.code).toBe(404);
    expect(missing.message).toContain('virtualmachines/migrate is not served by kubevirt-ts');
    const wrong = errorOf(() => routeOf(path('virtualmachines', 'stop'), 'POST', false));
    expect(wrong).toMatchObject({ code: 405, reason: 'MethodNotAllowed' });
    expect(wrong.message).toBe('virtualmachines/stop takes PUT, not POST');
    const plain = errorOf(() => routeOf(path('virtualmachineinstances', 'vnc'), 'GET', false));
    expect(plain.code).toBe(400);
    expect(plain.message).toContain('plain.kubevirt.io');
  });

  it('serves portforward/PORT[/PROTOCOL] on VMs and VMIs as one websocket route, authorized as `portforward`', () => {
    expect(routeOf(path('virtualmachineinstances', 'portforward/22'), 'GET', true)).toBe(
      'virtualmachineinstances/portforward',
    );
    expect(routeOf(path('virtualmachines', 'portforward/53/udp'), 'GET', true)).toBe(
      'virtualmachines/portforward',
    );
    expect(rbacSubresource(path('virtualmachines', 'portforward/53/udp'))).toBe('portforward');
    expect(rbacSubresource(path('virtualmachineinstances', 'vnc/screenshot'))).toBe('vnc');
    expect(rbacSubresource(path('virtualmachines', 'start'))).toBe('start');
    expect(errorOf(() => routeOf(path('virtualmachines', 'portforward/22'), 'GET', false))).toMatchObject({
      code: 400,
    });
    expect(errorOf(() => routeOf(path('virtualmachines', 'portforward/22'), 'PUT', true)).code).toBe(405);
  });
});

describe('portForwardTarget', () => {
  it('reads the port and the protocol, tcp by default', () => {
    expect(portForwardTarget('portforward/22')).toEqual({ port: 22, protocol: 'tcp' });
    expect(portForwardTarget('portforward/65535/udp')).toEqual({ port: 65535, protocol: 'udp' });
    expect(portForwardTarget('portforward/1/TCP')).toEqual({ port: 1, protocol: 'tcp' });
  });

  it('answers 400 naming the port or protocol that is wrong', () => {
    expect(errorOf(() => portForwardTarget('portforward'))).toMatchObject({
      code: 400,
      message:
        'port must not be empty: the path ends in .../portforward/PORT or .../portforward/PORT/PROTOCOL',
    });
    for (const bad of ['0', '65536', '-1', 'ssh', '2.5', '123456']) {
      expect(
        errorOf(() => portForwardTarget(`portforward/${bad}`)),
        bad,
      ).toMatchObject({
        code: 400,
        message: `port must be a number from 1 to 65535, got "${bad}"`,
      });
    }
    expect(errorOf(() => portForwardTarget('portforward/22/sctp'))).toMatchObject({
      code: 400,
      message: 'protocol must be tcp or udp, got "sctp"',
    });
    expect(errorOf(() => portForwardTarget('portforward/22/tcp/more')).code).toBe(404);
  });
});

describe('options', () => {
  it('reads an empty body as no options', () => {
    expect(parseBody(Buffer.from(''))).toEqual({});
    expect(startOptions({}, q())).toEqual({ paused: false, dryRun: false });
    expect(stopOptions({}, q())).toEqual({ gracePeriod: undefined, dryRun: false });
    expect(restartOptions({}, q())).toEqual({ gracePeriodSeconds: undefined, dryRun: false });
  });

  it('reads KubeVirt’s option bodies', () => {
    const body = parseBody(
      Buffer.from(
        '{"kind":"StartOptions","apiVersion":"subresources.kubevirt.io/v1","paused":true,"dryRun":["All"]}',
      ),
    );
    expect(startOptions(body, q())).toEqual({ paused: true, dryRun: true });
    expect(stopOptions({ gracePeriod: 0 }, q())).toEqual({ gracePeriod: 0, dryRun: false });
    expect(restartOptions({ gracePeriodSeconds: 0, dryRun: ['All'] }, q())).toEqual({
      gracePeriodSeconds: 0,
      dryRun: true,
    });
  });

  it('reads the same options from the query', () => {
    expect(startOptions({}, q('paused=true&dryRun=All'))).toEqual({ paused: true, dryRun: true });
    expect(startOptions({}, q('paused'))).toMatchObject({ paused: true });
    expect(stopOptions({}, q('gracePeriod=5'))).toMatchObject({ gracePeriod: 5 });
    expect(dryRunOptions({}, q('dryRun=All'))).toEqual({ dryRun: true });
  });

  it('refuses malformed options with 400 and says what is expected', () => {
    const cases: [() => unknown, string][] = [
      [() => parseBody(Buffer.from('{nope')), 'Can not unmarshal Request body'],
      [() => parseBody(Buffer.from('[1]')), 'must be a JSON object'],
      [() => startOptions({ paused: 'yes' }, q()), 'paused must be true or false'],
      [() => startOptions({}, q('paused=maybe')), 'query parameter paused must be true or false'],
      [() => startOptions({ dryRun: 'All' }, q()), 'dryRun must be a list of strings'],
      [() => dryRunOptions({ dryRun: ['Some'] }, q()), 'dryRun: Unsupported value: "Some"'],
      [() => stopOptions({ gracePeriod: 1.5 }, q()), 'gracePeriod must be a whole number of seconds'],
      [() => stopOptions({}, q('gracePeriod=-1')), 'gracePeriod must be 0 or more seconds'],
      [() => restartOptions({ gracePeriodSeconds: 30 }, q()), 'only gracePeriod=0 is supported'],
      [() => restartOptions({ gracePeriodSeconds: -1 }, q()), 'greater or equal to 0'],
    ];
    for (const [fn, message] of cases) {
      const err = errorOf(fn);
      expect(err.code).toBe(400);
      expect(err.message).toContain(message);
    }
  });
});
