import { describe, expect, it } from 'vitest';
import {
  apiserverFlags,
  COMPONENT_NAMES,
  controllerManagerFlags,
  controlPlaneComponents,
  etcdFlags,
  renderFlags,
  schedulerFlags,
} from './components.ts';
import { statePaths } from './layout.ts';
import { pkiFiles } from './pki.ts';

const paths = statePaths('/state');
const pki = pkiFiles('/state/pki');

function flagMap(flags: string[]): Map<string, string> {
  return new Map(
    flags.map((flag) => {
      const [name = '', ...value] = flag.replace(/^--/, '').split('=');
      return [name, value.join('=')];
    }),
  );
}

describe('renderFlags', () => {
  it('renders --name=value in the given order', () => {
    expect(renderFlags({ a: 1, 'b-c': true, d: 'x=y' })).toEqual(['--a=1', '--b-c=true', '--d=x=y']);
  });
});

describe('kube-apiserver flags', () => {
  const flags = flagMap(apiserverFlags(paths, pki));

  it('turns on RBAC and Node authorization and the admission plugins', () => {
    expect(flags.get('authorization-mode')).toBe('Node,RBAC');
    expect(flags.get('enable-admission-plugins')).toContain('NodeRestriction');
    expect(flags.has('disable-admission-plugins')).toBe(false);
  });

  it('configures the aggregation layer with the front-proxy PKI and endpoint routing', () => {
    expect(flags.get('requestheader-client-ca-file')).toBe('/state/pki/front-proxy-ca.crt');
    expect(flags.get('requestheader-allowed-names')).toBe('front-proxy-client');
    expect(flags.get('requestheader-username-headers')).toBe('X-Remote-User');
    expect(flags.get('requestheader-group-headers')).toBe('X-Remote-Group');
    expect(flags.get('requestheader-extra-headers-prefix')).toBe('X-Remote-Extra-');
    expect(flags.get('proxy-client-cert-file')).toBe('/state/pki/front-proxy-client.crt');
    expect(flags.get('proxy-client-key-file')).toBe('/state/pki/front-proxy-client.key');
    expect(flags.get('enable-aggregator-routing')).toBe('true');
  });

  it('signs and checks service-account tokens with the generated key pair', () => {
    expect(flags.get('service-account-issuer')).toBe('https://kubernetes.default.svc.cluster.local');
    expect(flags.get('service-account-key-file')).toBe('/state/pki/sa.pub');
    expect(flags.get('service-account-signing-key-file')).toBe('/state/pki/sa.key');
  });

  it('advertises the namespace address and serves the cluster CA and its cert', () => {
    expect(flags.get('advertise-address')).toBe('172.30.0.1');
    expect(flags.get('secure-port')).toBe('6443');
    expect(flags.get('service-cluster-ip-range')).toBe('10.96.0.0/16');
    expect(flags.get('client-ca-file')).toBe('/state/pki/ca.crt');
    expect(flags.get('tls-cert-file')).toBe('/state/pki/apiserver.crt');
    expect(flags.get('etcd-servers')).toBe('http://127.0.0.1:2379');
  });
});

describe('kube-controller-manager flags', () => {
  const flags = flagMap(controllerManagerFlags(pki, '/state/kubeconfig/controller-manager.kubeconfig'));

  it('signs with the cluster CA and mints per-controller service-account credentials', () => {
    expect(flags.get('cluster-signing-cert-file')).toBe('/state/pki/ca.crt');
    expect(flags.get('cluster-signing-key-file')).toBe('/state/pki/ca.key');
    expect(flags.get('root-ca-file')).toBe('/state/pki/ca.crt');
    expect(flags.get('service-account-private-key-file')).toBe('/state/pki/sa.key');
    expect(flags.get('use-service-account-credentials')).toBe('true');
  });

  it('allocates node pod ranges for local nodes', () => {
    expect(flags.get('allocate-node-cidrs')).toBe('true');
    expect(flags.get('cluster-cidr')).toBe('10.244.0.0/16');
    expect(flags.get('node-cidr-mask-size')).toBe('24');
  });
});

describe('etcd and scheduler flags', () => {
  it('keeps etcd on the namespace loopback with its data in the state dir', () => {
    const flags = flagMap(etcdFlags(paths));
    expect(flags.get('data-dir')).toBe('/state/etcd');
    expect(flags.get('listen-client-urls')).toBe('http://127.0.0.1:2379');
  });

  it('points the scheduler at its kubeconfig and serving cert', () => {
    const flags = flagMap(schedulerFlags(pki, '/k/scheduler.kubeconfig'));
    expect(flags.get('kubeconfig')).toBe('/k/scheduler.kubeconfig');
    expect(flags.get('authentication-kubeconfig')).toBe('/k/scheduler.kubeconfig');
    expect(flags.get('tls-cert-file')).toBe('/state/pki/scheduler-serving.crt');
  });
});

describe('controlPlaneComponents', () => {
  const components = controlPlaneComponents({
    binDir: '/bin-cache',
    paths,
    pki,
    kubeconfigs: { controllerManager: '/k/cm', scheduler: '/k/s' },
    hostPort: 36443,
    nodeScript: (script) => ['/node', `/src/${script}.ts`],
  });
  const byName = new Map(components.map((c) => [c.name, c]));

  it('starts each component only after the ones it depends on, listed earlier', () => {
    const seen = new Set<string>();
    for (const component of components) {
      for (const dep of component.startAfter ?? [])
        expect(seen.has(dep), `${component.name} after ${dep}`).toBe(true);
      seen.add(component.name);
    }
    expect(byName.get(COMPONENT_NAMES.controllerManager)?.startAfter).toEqual([COMPONENT_NAMES.apiserver]);
    expect(byName.get(COMPONENT_NAMES.apiserver)?.startAfter).toEqual([COMPONENT_NAMES.etcd]);
  });

  it('runs everything inside the namespace except the host side of the forwarder', () => {
    for (const component of components) {
      expect(component.netns).toBe(component.name === COMPONENT_NAMES.hostForwarder ? undefined : 'kvts-dc');
    }
  });

  it('gives every component a readiness probe, a log file and a pid file in the state dir', () => {
    for (const component of components) {
      expect(component.readiness, component.name).toBeDefined();
      expect(component.logFile).toBe(`/state/logs/${component.name}.log`);
      expect(component.pidFile).toBe(`/state/run/${component.name}.pid`);
    }
  });

  it('joins the host port to the API server through one unix socket', () => {
    const host = byName.get(COMPONENT_NAMES.hostForwarder)?.argv ?? [];
    const inside = byName.get(COMPONENT_NAMES.namespaceForwarder)?.argv ?? [];
    expect(host).toContain('tcp:127.0.0.1:36443=unix:/state/run/apiserver.sock');
    expect(inside).toContain('unix:/state/run/apiserver.sock=tcp:172.30.0.1:6443');
    expect(inside).toContain('unix:/state/run/etcd.sock=tcp:127.0.0.1:2379');
  });

  it('runs the binaries from the cache', () => {
    expect(byName.get(COMPONENT_NAMES.apiserver)?.argv[0]).toBe('/bin-cache/kube-apiserver');
    expect(byName.get(COMPONENT_NAMES.etcd)?.argv[0]).toBe('/bin-cache/etcd');
  });
});
