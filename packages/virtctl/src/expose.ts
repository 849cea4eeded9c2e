// `virtctl expose vm|vmi|vmirs NAME`: a core Service in front of a VM's launcher pod, as KubeVirt's virtctl makes it.
// A VM or VMI is selected by `vmi.kubevirt.io/id` (the label virt-controller puts on its launcher pods), a replica set
// by its selector's matchLabels. The ports are --port (with --target-port, --protocol, --port-name), or else the
// ports the pod network interface declares. The Service is owned by the object it exposes (deleting the VM deletes
// it) without blocking that object's deletion.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import {
  vmiIdLabel,
  VMI_ID_LABEL,
  type VirtualMachine,
  type VirtualMachineInstance,
  type VirtualMachineInstanceReplicaSet,
  type VirtualMachineInstanceSpec,
} from '@kubevirt-ts/schema';
import type { ApiClient } from './client.ts';
import { UsageError, VirtctlError, statusOf } from './errors.ts';

export type ExposeKind = 'vm' | 'vmi' | 'vmirs';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';
export type IPFamily = 'IPv4' | 'IPv6';
export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

export interface ExposeOptions {
  /** The Service's name; the exposed object's name when not given. */
  serviceName: string | undefined;
  /** The Service port; without it, the ports of the pod network interface. */
  port: number | undefined;
  /** The pod's port (number or name) behind `port`; the Service port when not given. */
  targetPort: number | string | undefined;
  portName: string | undefined;
  protocol: 'TCP' | 'UDP';
  type: ServiceType;
  /** `None` makes a headless Service. */
  clusterIP: string | undefined;
  externalIP: string | undefined;
  ipFamilies: IPFamily[];
  ipFamilyPolicy: IPFamilyPolicy | undefined;
}

const KINDS: Record<ExposeKind, { kind: string; plural: string; words: string[] }> = {
  vm: {
    kind: 'VirtualMachine',
    plural: 'virtualmachines',
    words: ['vm', 'vms', 'virtualmachine', 'virtualmachines'],
  },
  vmi: {
    kind: 'VirtualMachineInstance',
    plural: 'virtualmachineinstances',
    words: ['vmi', 'vmis', 'virtualmachineinstance', 'virtualmachineinstances'],
  },
  vmirs: {
    kind: 'VirtualMachineInstanceReplicaSet',
    plural: 'virtualmachineinstancereplicasets',
    words: ['vmirs', 'vmirss', 'virtualmachineinstancereplicaset', 'virtualmachineinstancereplicasets'],
  },
};

/** The kind a word names (case-insensitive, singular or plural, short or long, as KubeVirt's virtctl takes them). */
export function exposeKind(word: string): ExposeKind | undefined {
  const lower = word.toLowerCase();
  return (Object.keys(KINDS) as ExposeKind[]).find((k) => KINDS[k].words.includes(lower));
}

function oneOf<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a.toLowerCase() === raw.toLowerCase());
  if (found === undefined) {
    throw new UsageError(
      `--${flag} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, not ${JSON.stringify(raw)}`,
    );
  }
  return found;
}

export function parseServiceType(raw: string): ServiceType {
  if (raw.toLowerCase() === 'externalname') {
    throw new UsageError('--type ExternalName is not supported: a Service of that type selects no pods');
  }
  return oneOf('type', raw, ['ClusterIP', 'NodePort', 'LoadBalancer']);
}

export function parseProtocol(raw: string): 'TCP' | 'UDP' {
  return oneOf('protocol', raw, ['TCP', 'UDP']);
}

export function parseIPFamilies(raw: string): IPFamily[] {
  const families = raw.split(',').map((f) => oneOf('ip-family', f.trim(), ['IPv4', 'IPv6'] as const));
  if (families.length > 2 || (families.length === 2 && families[0] === families[1])) {
    throw new UsageError(
      `--ip-family must be IPv4, IPv6, "IPv4,IPv6" or "IPv6,IPv4", not ${JSON.stringify(raw)}`,
    );
  }
  return families;
}

export function parseIPFamilyPolicy(raw: string): IPFamilyPolicy {
  return oneOf('ip-family-policy', raw, ['SingleStack', 'PreferDualStack', 'RequireDualStack']);
}

// IANA service names, as Kubernetes checks a named targetPort: at most 15 lower-case letters, digits and single
// inner hyphens, with at least one letter.
const PORT_NAME = /^[a-z0-9]([a-z0-9]|-(?!-))*$/;

/** --target-port: a port number, or the name of a port of the launcher pod. */
export function parseTargetPort(raw: string): number | string {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n < 1 || n > 65535) throw new UsageError(`--target-port must be between 1 and 65535, got ${n}`);
    return n;
  }
  if (raw.length > 15 || !PORT_NAME.test(raw) || raw.endsWith('-') || !/[a-z]/.test(raw)) {
    throw new UsageError(
      `--target-port takes a port number (1 to 65535) or a port name (at most 15 lower-case letters, digits and ` +
        `inner hyphens, with a letter), not ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}

type Exposed = VirtualMachine | VirtualMachineInstance | VirtualMachineInstanceReplicaSet;

/** The ports the pod network interface declares, named port-1, port-2, … as KubeVirt's virtctl names them. */
export function podNetworkPorts(spec: VirtualMachineInstanceSpec | undefined): V1ServicePort[] {
  const network = spec?.networks?.find((n) => n.pod !== undefined);
  if (network === undefined) return [];
  const iface = spec?.domain.devices.interfaces?.find((i) => i.name === network.name);
  return (iface?.ports ?? []).map((p, i) => ({
    name: `port-${i + 1}`,
    protocol: p.protocol ?? 'TCP',
    port: p.port,
  }));
}

function selectorOf(kind: ExposeKind, object: Exposed, name: string): Record<string, string> {
  if (kind !== 'vmirs') return { [VMI_ID_LABEL]: vmiIdLabel(name) };
  const selector = (object as VirtualMachineInstanceReplicaSet).spec.selector;
  const where = `VirtualMachineInstanceReplicaSet ${object.metadata?.namespace ?? ''}/${name}`;
  if ((selector.matchExpressions ?? []).length > 0) {
    throw new VirtctlError(
      `cannot expose ${where}: its spec.selector has matchExpressions, and a Service selects by labels only`,
    );
  }
  const labels = selector.matchLabels ?? {};
  if (Object.keys(labels).length === 0) {
    throw new VirtctlError(
      `cannot expose ${where}: its spec.selector has no matchLabels to select its pods by`,
    );
  }
  return { ...labels };
}

function templateSpec(kind: ExposeKind, object: Exposed): VirtualMachineInstanceSpec | undefined {
  if (kind === 'vmi') return (object as VirtualMachineInstance).spec;
  return (object as VirtualMachine | VirtualMachineInstanceReplicaSet).spec.template?.spec;
}

/** The Service exposing `object` (a VM, VMI or VMI replica set as read from the API server). Pure. */
export function buildService(kind: ExposeKind, object: Exposed, options: ExposeOptions): V1Service {
  const name = object.metadata?.name ?? '';
  const namespace = object.metadata?.namespace ?? '';
  const uid = object.metadata?.uid ?? '';
  const { kind: kindName } = KINDS[kind];
  let ports: V1ServicePort[];
  if (options.port !== undefined) {
    ports = [
      {
        ...(options.portName === undefined ? {} : { name: options.portName }),
        protocol: options.protocol,
        port: options.port,
        ...(options.targetPort === undefined ? {} : { targetPort: options.targetPort }),
      },
    ];
  } else {
    ports = podNetworkPorts(templateSpec(kind, object));
    if (ports.length === 0) {
      throw new VirtctlError(
        `cannot expose ${kindName} ${namespace}/${name}: its pod network interface declares no ports; ` +
          'pass the port to serve with --port (and the guest port with --target-port)',
      );
    }
  }
  const ipFamilyPolicy =
    options.ipFamilyPolicy ?? (options.ipFamilies.length > 1 ? 'PreferDualStack' : undefined);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: options.serviceName ?? name,
      namespace,
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: kindName,
          name,
          uid,
          controller: true,
          blockOwnerDeletion: false,
        },
      ],
    },
    spec: {
      type: options.type,
      selector: selectorOf(kind, object, name),
      ports,
      ...(options.clusterIP === undefined ? {} : { clusterIP: options.clusterIP }),
      ...(options.externalIP === undefined ? {} : { externalIPs: [options.externalIP] }),
      ...(options.ipFamilies.length === 0 ? {} : { ipFamilies: options.ipFamilies }),
      ...(ipFamilyPolicy === undefined ? {} : { ipFamilyPolicy }),
    },
  };
}

function serverSaid(body: string): string {
  const message = statusOf(body).message ?? '';
  return message === '' ? '' : `\n  the API server said: ${message}`;
}

/** Reads the object to expose; a missing or forbidden one is a clear error. */
async function readExposed(client: ApiClient, kind: ExposeKind, name: string): Promise<Exposed> {
  const { kind: kindName, plural } = KINDS[kind];
  const e = encodeURIComponent;
  const res = await client.request(
    'GET',
    `/apis/kubevirt.io/v1/namespaces/${e(client.namespace)}/${plural}/${e(name)}`,
  );
  if (res.status === 200) return JSON.parse(res.body) as Exposed;
  if (res.status === 404) {
    const hint = kind === 'vmi' ? ` (is its VM running? start it with: virtctl start ${name})` : '';
    throw new VirtctlError(`${kindName} "${name}" not found in namespace "${client.namespace}"${hint}`);
  }
  if (res.status === 403) {
    throw new VirtctlError(
      `forbidden: you may not read ${kindName} ${client.namespace}/${name} (to expose it): this needs verb "get" ` +
        `on "${plural}" in API group "kubevirt.io" in namespace "${client.namespace}"${serverSaid(res.body)}`,
    );
  }
  throw new VirtctlError(
    `cannot read ${kindName} ${client.namespace}/${name} (to expose it): HTTP ${res.status}${serverSaid(res.body)}`,
  );
}

/** Creates the Service; resolves with what to print. */
export async function expose(
  client: ApiClient,
  kind: ExposeKind,
  name: string,
  options: ExposeOptions,
): Promise<string> {
  const object = await readExposed(client, kind, name);
  const service = buildService(kind, object, options);
  const serviceName = service.metadata?.name ?? '';
  const where = `namespace "${client.namespace}"`;
  const res = await client.request(
    'POST',
    `/api/v1/namespaces/${encodeURIComponent(client.namespace)}/services`,
    service,
  );
  if (res.status === 200 || res.status === 201) {
    return `Service ${serviceName} successfully created for ${kind} ${name}`;
  }
  const status = statusOf(res.body);
  switch (res.status) {
    case 409:
      throw new VirtctlError(
        `Service "${serviceName}" already exists in ${where}: choose another name with --name, or delete it ` +
          `(kubectl delete service ${serviceName} -n ${client.namespace})`,
      );
    case 403:
      throw new VirtctlError(
        `forbidden: you may not create Services in ${where}: this needs verb "create" on "services" in the core ` +
          `API group (the edit or admin role has it; ask your cluster administrator)${serverSaid(res.body)}`,
      );
    case 400:
    case 422: {
      const message = status.message ?? `HTTP ${res.status}`;
      const hint = /metadata\.name/.test(message) ? '; choose a valid Service name with --name' : '';
      throw new VirtctlError(`cannot create Service ${client.namespace}/${serviceName}: ${message}${hint}`);
    }
    default:
      throw new VirtctlError(
        `cannot create Service ${client.namespace}/${serviceName}: HTTP ${res.status}` +
          `${status.reason === undefined ? '' : ` ${status.reason}`}${serverSaid(res.body)}`,
      );
  }
}
