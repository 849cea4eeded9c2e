// Cluster DNS: the real CoreDNS (built from the Go module proxy, go/coredns) run as a process inside the cluster's
// namespace on the control plane address, behind the `kube-system/kube-dns` Service at the service range's 10th
// address. The Service has no selector: its EndpointSlice names the process's address, as `expose` does for
// processes run from source, so each node's kube-proxy carries 10.96.0.10:53 to it like any other Service.
// CoreDNS watches Services, EndpointSlices and Namespaces with a client certificate of its own (`system:coredns`),
// allowed by a ClusterRole with kubeadm's rules for CoreDNS and nothing more.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1EndpointSlice,
  type V1Service,
} from '@kubernetes/client-node';
import { ENDPOINT_SLICE_MANAGER, FIELD_MANAGER } from './expose.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { componentLogFile, componentPidFile, NETWORK, PORTS, type StatePaths } from './layout.ts';
import { issueCertificate, readClusterCa } from './pki.ts';
import type { ComponentSpec } from './spec.ts';

export const COREDNS_COMPONENT = 'coredns';
/** The user CoreDNS authenticates as (its client certificate's common name). */
export const COREDNS_USER = 'system:coredns';
export const DNS_SERVICE = { name: 'kube-dns', namespace: 'kube-system' } as const;

export interface DnsFiles {
  corefile: string;
  kubeconfig: string;
}

export function dnsFiles(paths: StatePaths): DnsFiles {
  return { corefile: join(paths.dns, 'Corefile'), kubeconfig: join(paths.dns, 'coredns.kubeconfig') };
}

/**
 * The Corefile: the `kubernetes` plugin answers the cluster domain and reverse lookups of Service and pod
 * addresses, like a kubeadm cluster's. No `forward`: nothing outside devcluster's namespaces is reachable, so names
 * outside the cluster domain are refused rather than timing out upstream.
 */
export function corefile(kubeconfig: string): string {
  return [
    `.:${PORTS.dns} {`,
    `    bind ${NETWORK.controlPlaneAddress}`,
    '    errors',
    `    ready 127.0.0.1:${PORTS.dnsReady}`,
    `    kubernetes ${NETWORK.clusterDomain} in-addr.arpa ip6.arpa {`,
    `        kubeconfig ${kubeconfig}`,
    '        pods insecure',
    '        fallthrough in-addr.arpa ip6.arpa',
    '        ttl 30',
    '    }',
    '    cache 30',
    '    loadbalance',
    '}',
    '',
  ].join('\n');
}

/** CoreDNS's certificate (from the cluster CA), kubeconfig and Corefile under the state dir's dns/. */
export async function writeDnsFiles(paths: StatePaths, apiserverUrl: string): Promise<DnsFiles> {
  const files = dnsFiles(paths);
  const ca = await readClusterCa(paths.pki);
  const caPem = ca.certPem;
  const client = await issueCertificate(ca, { commonName: COREDNS_USER, usage: 'client' });
  await mkdir(paths.dns, { recursive: true, mode: 0o700 });
  await writeKubeconfig(files.kubeconfig, {
    name: 'devcluster',
    user: COREDNS_USER,
    server: apiserverUrl,
    caPem,
    credentials: { kind: 'client-certificate', certPem: client.certPem, keyPem: client.keyPem },
  });
  await writeFile(`${files.corefile}.tmp`, corefile(files.kubeconfig), { mode: 0o600 });
  await rename(`${files.corefile}.tmp`, files.corefile);
  return files;
}

/** The supervisor's CoreDNS: in the cluster namespace once the API server is ready, probed through `ready`. */
export function corednsComponent(binDir: string, paths: StatePaths, startAfter: string): ComponentSpec {
  return {
    name: COREDNS_COMPONENT,
    argv: [join(binDir, 'coredns'), '-conf', dnsFiles(paths).corefile],
    netns: NETWORK.namespace,
    startAfter: [startAfter],
    // `ready` answers 200 once the kubernetes plugin has synced its caches from the API server.
    readiness: { kind: 'http-unix', socketPath: paths.dnsReadySocket, path: '/ready' },
    logFile: componentLogFile(paths, COREDNS_COMPONENT),
    pidFile: componentPidFile(paths, COREDNS_COMPONENT),
  };
}

/** The namespace forwarder's rule that lets the supervisor probe CoreDNS's `ready` endpoint from the host. */
export function dnsReadyForward(paths: StatePaths): string {
  return `unix:${paths.dnsReadySocket}=tcp:127.0.0.1:${PORTS.dnsReady}`;
}

/** RBAC for CoreDNS, the kube-dns Service and its EndpointSlice (pure, so tests can read them). */
export function clusterDnsManifests(): {
  clusterRole: V1ClusterRole;
  clusterRoleBinding: V1ClusterRoleBinding;
  service: V1Service;
  endpointSlice: V1EndpointSlice;
} {
  const managed = { 'app.kubernetes.io/managed-by': FIELD_MANAGER };
  const dnsLabels = { ...managed, 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' };
  const ports = [
    { name: 'dns', port: PORTS.dns, protocol: 'UDP' },
    { name: 'dns-tcp', port: PORTS.dns, protocol: 'TCP' },
  ];
  return {
    clusterRole: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: COREDNS_USER, labels: managed },
      rules: [
        {
          apiGroups: [''],
          resources: ['endpoints', 'services', 'pods', 'namespaces'],
          verbs: ['list', 'watch'],
        },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    clusterRoleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: COREDNS_USER, labels: managed },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: COREDNS_USER },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: COREDNS_USER }],
    },
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { ...DNS_SERVICE, labels: dnsLabels },
      spec: {
        type: 'ClusterIP',
        clusterIP: NETWORK.clusterDnsIp,
        ports: ports.map((p) => ({ ...p, targetPort: PORTS.dns })),
      },
    },
    endpointSlice: {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${DNS_SERVICE.name}-devcluster`,
        namespace: DNS_SERVICE.namespace,
        labels: {
          ...managed,
          'kubernetes.io/service-name': DNS_SERVICE.name,
          'endpointslice.kubernetes.io/managed-by': ENDPOINT_SLICE_MANAGER,
        },
      },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: [NETWORK.controlPlaneAddress],
          conditions: { ready: true, serving: true, terminating: false },
        },
      ],
      ports,
    },
  };
}

/** Applies (server-side apply, so `up` on a kept etcd is harmless) what clusterDnsManifests describes. */
export async function ensureClusterDns(kc: KubeConfig): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  const m = clusterDnsManifests();
  const objects: KubernetesObject[] = [m.clusterRole, m.clusterRoleBinding, m.service, m.endpointSlice];
  for (const obj of objects) {
    await client.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }
}
