// A pod's /etc/resolv.conf, by the kubelet's rules (pkg/kubelet/network/dns): `dnsPolicy` picks the cluster DNS
// (the kube-dns Service, with the pod's namespace first in the search list and `ndots:5`), the node's own resolver
// configuration, or nothing, and `dnsConfig` is merged on top. Pure: the agent writes the text into the pod's
// folder and binds it at /etc/resolv.conf in every container.
import type { V1Pod } from '@kubernetes/client-node';
import { NETWORK } from '../layout.ts';

/** The resolver's limits the kubelet enforces (glibc reads 3 nameservers; Kubernetes allows 32 search domains). */
export const MAX_NAMESERVERS = 3;
export const MAX_SEARCHES = 32;

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

/** nameserver/search/domain/options lines of a resolv.conf (comments and anything else ignored). */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...values] = line.split(/\s+/);
    if (key === 'nameserver' && values[0]) conf.nameservers.push(values[0]);
    // As in glibc, the last search or domain line wins.
    else if (key === 'search' || key === 'domain') conf.searches = values;
    else if (key === 'options') conf.options.push(...values);
  }
  return conf;
}

export type DnsKind = 'cluster' | 'host' | 'none';

/** Which configuration a pod starts from: the kubelet's getPodDNSType. */
export function podDnsKind(pod: V1Pod): DnsKind {
  switch (pod.spec?.dnsPolicy) {
    case 'None':
      return 'none';
    case 'ClusterFirstWithHostNet':
      return 'cluster';
    case 'Default':
      return 'host';
    default:
      // ClusterFirst (the default): cluster DNS, except for a pod on the host network, which gets the node's.
      return pod.spec?.hostNetwork ? 'host' : 'cluster';
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** dnsConfig options override the base's options of the same name (`ndots:2` replaces `ndots:5`). */
function mergeOptions(
  base: readonly string[],
  extra: readonly { name?: string; value?: string }[],
): string[] {
  const byName = new Map<string, string>();
  for (const option of base) byName.set(option.split(':')[0] ?? option, option);
  for (const { name, value } of extra) {
    if (!name) continue;
    byName.set(name, value === undefined ? name : `${name}:${value}`);
  }
  return [...byName.values()];
}

/** The pod's resolver configuration; `node` is the node's own (the machine's /etc/resolv.conf). */
export function podResolvConf(pod: V1Pod, node: ResolvConf): ResolvConf {
  const kind = podDnsKind(pod);
  const namespace = pod.metadata?.namespace ?? 'default';
  const domain = NETWORK.clusterDomain;
  const base: ResolvConf =
    kind === 'cluster'
      ? {
          nameservers: [NETWORK.clusterDnsIp],
          searches: [`${namespace}.svc.${domain}`, `svc.${domain}`, domain, ...node.searches],
          options: ['ndots:5'],
        }
      : kind === 'host'
        ? node
        : { nameservers: [], searches: [], options: [] };
  const extra = pod.spec?.dnsConfig;
  return {
    nameservers: unique([...base.nameservers, ...(extra?.nameservers ?? [])]).slice(0, MAX_NAMESERVERS),
    searches: unique([...base.searches, ...(extra?.searches ?? [])]).slice(0, MAX_SEARCHES),
    options: mergeOptions(base.options, extra?.options ?? []),
  };
}

export function renderResolvConf(conf: ResolvConf): string {
  const lines = ['# Kubernetes-managed resolv.conf (devcluster).'];
  if (conf.searches.length > 0) lines.push(`search ${conf.searches.join(' ')}`);
  for (const server of conf.nameservers) lines.push(`nameserver ${server}`);
  if (conf.options.length > 0) lines.push(`options ${conf.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
