// Makes a process run from source reachable by the API server (webhooks, the aggregated API): a Service without a
// selector plus an EndpointSlice naming the process's address inside the cluster's namespace. The API server
// resolves such Services through their EndpointSlices (--enable-aggregator-routing), and loopback addresses are
// not allowed there, which is why processes run inside the namespace with a real address.
import {
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type V1EndpointSlice,
  type V1Service,
} from '@kubernetes/client-node';
import { DevclusterError } from './errors.ts';
import { NETWORK } from './layout.ts';

export const FIELD_MANAGER = 'devcluster';
export const ENDPOINT_SLICE_MANAGER = 'devcluster.kubevirt-ts.dev';

export interface ExposeOptions {
  name: string;
  /** Default: `default`. */
  namespace?: string;
  /** The Service's port (what a webhook configuration or APIService names). */
  port: number;
  /** The process's port; default: the same as `port`. */
  targetPort?: number;
  /** The process's address; default: the control plane address, where `devcluster exec` processes listen. */
  address?: string;
  /** Default: `https`. */
  portName?: string;
}

function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

/** Whether an IPv4 address lies in a CIDR range (false for anything that is not IPv4). */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const a = ipv4ToNumber(ip);
  const b = ipv4ToNumber(base ?? '');
  if (a === undefined || b === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(a / size) === Math.floor(b / size);
}

/** The manifests `expose` applies (pure, so tests can check them without a cluster). */
export function exposeManifests(options: ExposeOptions): {
  service: V1Service;
  endpointSlice: V1EndpointSlice;
} {
  const namespace = options.namespace ?? 'default';
  const address = options.address ?? NETWORK.controlPlaneAddress;
  const portName = options.portName ?? 'https';
  const targetPort = options.targetPort ?? options.port;
  if (!ipv4InCidr(address, NETWORK.subnet) && !ipv4InCidr(address, NETWORK.podCidr)) {
    throw new DevclusterError(
      `expose ${namespace}/${options.name}: ${address} is not an address inside the devcluster network`,
      `use an address in ${NETWORK.subnet} (processes started with \`devcluster exec\` have ${NETWORK.controlPlaneAddress}) or in ${NETWORK.podCidr}`,
    );
  }
  for (const [what, port] of [
    ['--port', options.port],
    ['--target-port', targetPort],
  ] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new DevclusterError(`expose ${namespace}/${options.name}: ${what} ${port} is not a port number`);
    }
  }
  const labels = { 'app.kubernetes.io/managed-by': FIELD_MANAGER };
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: options.name, namespace, labels },
      spec: {
        type: 'ClusterIP',
        ports: [{ name: portName, port: options.port, targetPort, protocol: 'TCP' }],
      },
    },
    endpointSlice: {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${options.name}-devcluster`,
        namespace,
        labels: {
          ...labels,
          'kubernetes.io/service-name': options.name,
          'endpointslice.kubernetes.io/managed-by': ENDPOINT_SLICE_MANAGER,
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true, serving: true, terminating: false } }],
      ports: [{ name: portName, port: targetPort, protocol: 'TCP' }],
    },
  };
}

/** Creates or updates (server-side apply) the Service and its EndpointSlice. */
export async function expose(
  kc: KubeConfig,
  options: ExposeOptions,
): Promise<{ service: V1Service; endpointSlice: V1EndpointSlice }> {
  const manifests = exposeManifests(options);
  const client = KubernetesObjectApi.makeApiClient(kc);
  const apply = <T extends V1Service | V1EndpointSlice>(obj: T) =>
    client.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  return {
    service: await apply(manifests.service),
    endpointSlice: await apply(manifests.endpointSlice),
  };
}
