// One real kube-proxy per node (built from the same Kubernetes source as the control plane), run by the supervisor
// inside the node's network namespace, as a kube-proxy DaemonSet pod runs on a node's host network. It programs
// that namespace's nftables, where every packet of the node's pods passes (they route through the node's cbr0),
// so ClusterIPs, NodePorts and the kube-dns Service work exactly as kube-proxy makes them work anywhere.
// It authenticates as `system:kube-proxy`, which the API server's bootstrap policy binds to `system:node-proxier`.
import { access, constants, mkdir, rename, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { DevclusterError } from '../errors.ts';
import { writeKubeconfig } from '../kubeconfig.ts';
import { componentLogFile, componentPidFile, NETWORK, PORTS, type StatePaths } from '../layout.ts';
import { issueCertificate, readClusterCa } from '../pki.ts';
import type { ComponentSpec } from '../spec.ts';
import type { NodeIdentity, NodePaths } from './layout.ts';

/** The user of kube-proxy's client certificate: bound to the ClusterRole system:node-proxier by default. */
export const KUBE_PROXY_USER = 'system:kube-proxy';

export function kubeProxyComponentName(node: NodeIdentity): string {
  return `kube-proxy-${node.name}`;
}

/**
 * The KubeProxyConfiguration of one node (JSON, which kube-proxy reads as YAML).
 *
 * - `nftables` mode: the kernel's nf_tables through the `nft` command (Debian's nftables package), no legacy
 *   iptables modules needed.
 * - `masqueradeAll`: the pods of a node share a plain bridge without br_netfilter, so a reply from a backend on the
 *   same bridge as its client would skip the node's connection tracking and never be translated back; masquerading
 *   every Service connection sends replies through the node. Backends see the node's address as the source.
 * - conntrack sizes and timeouts 0: leave the machine's values alone (the table size is not per namespace).
 * - NodePorts on the node's address only, where the cluster namespace and other nodes reach it.
 */
export function kubeProxyConfiguration(node: NodeIdentity, kubeconfig: string): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'nftables',
    hostnameOverride: node.name,
    bindAddress: node.address,
    healthzBindAddress: `${node.address}:${PORTS.kubeProxyHealthz}`,
    metricsBindAddress: `127.0.0.1:${PORTS.kubeProxyMetrics}`,
    clientConnection: { kubeconfig, qps: 20, burst: 40 },
    clusterCIDR: NETWORK.podCidr,
    detectLocalMode: 'ClusterCIDR',
    nodePortAddresses: [`${node.address}/32`],
    nftables: { masqueradeAll: true, syncPeriod: '30s', minSyncPeriod: '0s' },
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    enableProfiling: false,
  };
}

/** kube-proxy's certificate (from the cluster CA), kubeconfig and configuration under the node root. */
export async function writeKubeProxyFiles(
  pkiDir: string,
  node: NodeIdentity,
  paths: NodePaths,
  apiserverUrl: string,
): Promise<void> {
  const ca = await readClusterCa(pkiDir);
  const caPem = ca.certPem;
  const client = await issueCertificate(ca, { commonName: KUBE_PROXY_USER, usage: 'client' });
  await mkdir(paths.kubeProxy.dir, { recursive: true, mode: 0o700 });
  await writeKubeconfig(paths.kubeProxy.kubeconfig, {
    name: 'devcluster',
    user: KUBE_PROXY_USER,
    server: apiserverUrl,
    caPem,
    credentials: { kind: 'client-certificate', certPem: client.certPem, keyPem: client.keyPem },
  });
  const config = kubeProxyConfiguration(node, paths.kubeProxy.kubeconfig);
  await writeFile(`${paths.kubeProxy.config}.tmp`, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(`${paths.kubeProxy.config}.tmp`, paths.kubeProxy.config);
}

/**
 * The supervisor's kube-proxy of a node, probed on /healthz. It starts beside the node's agent once the API server
 * is ready (not after the agent, which would put its start on `up`'s critical path): kube-proxy polls for its Node
 * object each second until the agent has registered it.
 */
export function kubeProxyComponent(
  binDir: string,
  state: StatePaths,
  node: NodeIdentity,
  paths: NodePaths,
  startAfter: string,
): ComponentSpec {
  const name = kubeProxyComponentName(node);
  return {
    name,
    // `ip netns exec` (the spec's netns) also mounts the namespace's own /sys, which kube-proxy reads.
    argv: [join(binDir, 'kube-proxy'), `--config=${paths.kubeProxy.config}`],
    netns: node.netns,
    startAfter: [startAfter],
    // /healthz answers 200 once kube-proxy has written its rules after the first sync with the API server.
    readiness: { kind: 'http-unix', socketPath: paths.kubeProxy.healthSocket, path: '/healthz' },
    logFile: componentLogFile(state, name),
    pidFile: componentPidFile(state, name),
  };
}

/** The namespace forwarder's rule that lets the supervisor probe a node's kube-proxy from the host. */
export function kubeProxyHealthForward(node: NodeIdentity, paths: NodePaths): string {
  return `unix:${paths.kubeProxy.healthSocket}=tcp:${node.address}:${PORTS.kubeProxyHealthz}`;
}

/** kube-proxy's nftables mode runs `nft`: say what to install before any node starts, not in its log. */
export async function assertNftInstalled(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const ok = await access(join(dir, 'nft'), constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) return;
  }
  throw new DevclusterError(
    "devcluster's nodes run kube-proxy in nftables mode, which needs the `nft` command, and it is not on PATH",
    'install it (Debian/Ubuntu: apt-get install nftables; `make setup` does this through scripts/install-hypervisor.sh)',
  );
}
