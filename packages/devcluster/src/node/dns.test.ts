import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseResolvConf, podDnsKind, podResolvConf, renderResolvConf } from './dns.ts';

const NODE = parseResolvConf('# the machine\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0\n');

function pod(spec: V1Pod['spec'] = { containers: [] }, namespace = 'team'): V1Pod {
  return { metadata: { name: 'p', namespace }, spec };
}

describe('pod resolv.conf', () => {
  it('points a ClusterFirst pod at kube-dns with its namespace first in the search list', () => {
    const conf = podResolvConf(pod(), NODE);
    expect(conf).toEqual({
      nameservers: ['10.96.0.10'],
      searches: ['team.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'],
      options: ['ndots:5'],
    });
    expect(renderResolvConf(conf)).toBe(
      '# Kubernetes-managed resolv.conf (devcluster).\n' +
        'search team.svc.cluster.local svc.cluster.local cluster.local corp.example\n' +
        'nameserver 10.96.0.10\n' +
        'options ndots:5\n',
    );
  });

  it('follows the kubelet for host-network pods and the other policies', () => {
    expect(podDnsKind(pod({ containers: [], hostNetwork: true }))).toBe('host');
    expect(podDnsKind(pod({ containers: [], hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }))).toBe(
      'cluster',
    );
    expect(podDnsKind(pod({ containers: [], dnsPolicy: 'Default' }))).toBe('host');
    expect(podDnsKind(pod({ containers: [], dnsPolicy: 'None' }))).toBe('none');
    expect(podResolvConf(pod({ containers: [], dnsPolicy: 'Default' }), NODE)).toEqual(NODE);
  });

  it('merges dnsConfig: servers and searches appended without duplicates, options replaced by name', () => {
    const conf = podResolvConf(
      pod({
        containers: [],
        dnsConfig: {
          nameservers: ['10.96.0.10', '192.0.2.1'],
          searches: ['cluster.local', 'extra.example'],
          options: [{ name: 'ndots', value: '2' }, { name: 'single-request' }],
        },
      }),
      NODE,
    );
    expect(conf.nameservers).toEqual(['10.96.0.10', '192.0.2.1']);
    expect(conf.searches).toEqual([
      'team.svc.cluster.local',
      'svc.cluster.local',
      'cluster.local',
      'corp.example',
      'extra.example',
    ]);
    expect(conf.options).toEqual(['ndots:2', 'single-request']);
  });

  it('gives a None pod only its dnsConfig, within the resolver limits', () => {
    const conf = podResolvConf(
      pod({
        containers: [],
        dnsPolicy: 'None',
        dnsConfig: { nameservers: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'] },
      }),
      NODE,
    );
    expect(conf).toEqual({ nameservers: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], searches: [], options: [] });
  });

  it('reads the last search or domain line, as glibc does', () => {
    expect(parseResolvConf('domain a.example\nsearch b.example c.example\n').searches).toEqual([
      'b.example',
      'c.example',
    ]);
    expect(parseResolvConf('nameserver 192.0.2.9 # comment\n').nameservers).toEqual(['192.0.2.9']);
  });
});
