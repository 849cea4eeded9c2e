// The Service `virtctl expose` builds from a VM, VMI or VMI replica set, and the flag values it takes, compared with
// what KubeVirt's virtctl sends for the same objects and flags.
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstanceSpec,
} from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { UsageError, VirtctlError } from './errors.ts';
import {
  buildService,
  exposeKind,
  parseIPFamilies,
  parseIPFamilyPolicy,
  parseProtocol,
  parseServiceType,
  parseTargetPort,
  podNetworkPorts,
  type ExposeOptions,
} from './expose.ts';

const options = (overrides: Partial<ExposeOptions> = {}): ExposeOptions => ({
  serviceName: undefined,
  port: undefined,
  targetPort: undefined,
  portName: undefined,
  protocol: 'TCP',
  type: 'ClusterIP',
  clusterIP: undefined,
  externalIP: undefined,
  ipFamilies: [],
  ipFamilyPolicy: undefined,
  ...overrides,
});

function vmiSpec(
  ports?: { name?: string; protocol?: 'TCP' | 'UDP'; port: number }[],
): VirtualMachineInstanceSpec {
  return {
    domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ...(ports ? { ports } : {}) }] } },
    networks: [{ name: 'default', pod: {} }],
  };
}

const meta = (name: string) => ({ name, namespace: 'team-a', uid: `uid-${name}` });

function vm(name: string, spec = vmiSpec()): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: meta(name),
    spec: { template: { metadata: { labels: { app: 'web' } }, spec } },
  };
}

function failure(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

describe('buildService', () => {
  it('a VM: selects its launcher pod by vmi.kubevirt.io/id, serves --port on --target-port, owned by the VM', () => {
    const service = buildService('vm', vm('masq-vm'), options({ port: 8000, targetPort: 80 }));
    expect(service).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'masq-vm',
        namespace: 'team-a',
        ownerReferences: [
          {
            apiVersion: 'kubevirt.io/v1',
            kind: 'VirtualMachine',
            name: 'masq-vm',
            uid: 'uid-masq-vm',
            controller: true,
            blockOwnerDeletion: false,
          },
        ],
      },
      spec: {
        type: 'ClusterIP',
        selector: { 'vmi.kubevirt.io/id': 'masq-vm' },
        ports: [{ protocol: 'TCP', port: 8000, targetPort: 80 }],
      },
    });
  });

  it('a VM name too long for a label is selected by the same hashed id the controller puts on the pod', () => {
    const long = `vm-${'x'.repeat(70)}`;
    const selector = buildService('vm', vm(long), options({ port: 22 })).spec?.selector ?? {};
    const id = selector['vmi.kubevirt.io/id'] ?? '';
    expect(id).toHaveLength(63);
    expect(id).toMatch(/^vm-x+-[0-9a-f]{8}$/);
  });

  it('a VMI: the same selector, owned by the VMI; every flag lands in the spec', () => {
    const vmi = {
      metadata: meta('vmi1'),
      spec: vmiSpec(),
    } as VirtualMachineInstance;
    const service = buildService(
      'vmi',
      vmi,
      options({
        serviceName: 'ssh',
        port: 2222,
        targetPort: 'ssh',
        portName: 'ssh',
        protocol: 'UDP',
        type: 'NodePort',
        clusterIP: '10.96.0.50',
        externalIP: '192.0.2.10',
        ipFamilies: ['IPv4', 'IPv6'],
      }),
    );
    expect(service.metadata).toMatchObject({
      name: 'ssh',
      ownerReferences: [{ kind: 'VirtualMachineInstance', name: 'vmi1', uid: 'uid-vmi1' }],
    });
    expect(service.spec).toEqual({
      type: 'NodePort',
      selector: { 'vmi.kubevirt.io/id': 'vmi1' },
      ports: [{ name: 'ssh', protocol: 'UDP', port: 2222, targetPort: 'ssh' }],
      clusterIP: '10.96.0.50',
      externalIPs: ['192.0.2.10'],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'PreferDualStack',
    });
    expect(
      buildService('vmi', vmi, options({ port: 1, ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' }))
        .spec,
    ).toMatchObject({ ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' });
  });

  it('without --port, serves the ports the pod network interface lists, named port-1, port-2', () => {
    const spec = vmiSpec([
      { name: 'http', port: 80 },
      { port: 53, protocol: 'UDP' },
    ]);
    expect(buildService('vm', vm('web', spec), options()).spec?.ports).toEqual([
      { name: 'port-1', protocol: 'TCP', port: 80 },
      { name: 'port-2', protocol: 'UDP', port: 53 },
    ]);
  });

  it('without --port and without declared ports, says to pass --port', () => {
    const err = failure(() => buildService('vm', vm('web'), options()));
    expect(err).toBeInstanceOf(VirtctlError);
    expect(err.message).toBe(
      'cannot expose VirtualMachine team-a/web: its pod network interface declares no ports; pass the port to ' +
        'serve with --port (and the guest port with --target-port)',
    );
  });

  it('a VMI replica set: selects by its matchLabels; refuses matchExpressions and an empty selector', () => {
    const rs = (selector: VirtualMachineInstanceReplicaSet['spec']['selector']) =>
      ({
        metadata: meta('rs'),
        spec: { selector, template: { spec: vmiSpec([{ port: 80 }]) } },
      }) as VirtualMachineInstanceReplicaSet;
    const service = buildService('vmirs', rs({ matchLabels: { app: 'web' } }), options());
    expect(service.spec?.selector).toEqual({ app: 'web' });
    expect(service.metadata?.ownerReferences?.[0]?.kind).toBe('VirtualMachineInstanceReplicaSet');
    expect(
      failure(() =>
        buildService(
          'vmirs',
          rs({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] }),
          options(),
        ),
      ).message,
    ).toBe(
      'cannot expose VirtualMachineInstanceReplicaSet team-a/rs: its spec.selector has matchExpressions, and a ' +
        'Service selects by labels only',
    );
    expect(failure(() => buildService('vmirs', rs({}), options())).message).toMatch(
      /spec\.selector has no matchLabels/,
    );
  });
});

describe('podNetworkPorts', () => {
  it('reads the interface on the pod network, not another one', () => {
    const spec = {
      domain: {
        devices: {
          interfaces: [
            { name: 'other', bridge: {}, ports: [{ port: 1 }] },
            { name: 'pod', masquerade: {}, ports: [{ port: 2 }] },
          ],
        },
      },
      networks: [
        { name: 'other', multus: { networkName: 'x' } },
        { name: 'pod', pod: {} },
      ],
    } as unknown as VirtualMachineInstanceSpec;
    expect(podNetworkPorts(spec)).toEqual([{ name: 'port-1', protocol: 'TCP', port: 2 }]);
    expect(podNetworkPorts(undefined)).toEqual([]);
  });
});

describe('flag values', () => {
  it('takes KubeVirt’s kind words, case-insensitive', () => {
    expect(['vm', 'VMs', 'VirtualMachine', 'virtualmachines'].map(exposeKind)).toEqual([
      'vm',
      'vm',
      'vm',
      'vm',
    ]);
    expect(['vmi', 'vmis', 'VirtualMachineInstance'].map(exposeKind)).toEqual(['vmi', 'vmi', 'vmi']);
    expect(['vmirs', 'vmirss', 'virtualmachineinstancereplicasets'].map(exposeKind)).toEqual([
      'vmirs',
      'vmirs',
      'vmirs',
    ]);
    expect(exposeKind('pod')).toBeUndefined();
  });

  it('service types and protocols case-insensitive; ExternalName refused with the reason', () => {
    expect(parseServiceType('nodeport')).toBe('NodePort');
    expect(parseServiceType('LoadBalancer')).toBe('LoadBalancer');
    expect(parseProtocol('udp')).toBe('UDP');
    expect(failure(() => parseServiceType('ExternalName')).message).toBe(
      '--type ExternalName is not supported: a Service of that type selects no pods',
    );
    const bad = failure(() => parseServiceType('Headless'));
    expect(bad).toBeInstanceOf(UsageError);
    expect(bad.message).toBe('--type must be ClusterIP, NodePort or LoadBalancer, not "Headless"');
    expect(failure(() => parseProtocol('SCTP')).message).toBe('--protocol must be TCP or UDP, not "SCTP"');
  });

  it('target ports: a number in range or an IANA port name', () => {
    expect(parseTargetPort('80')).toBe(80);
    expect(parseTargetPort('http-alt')).toBe('http-alt');
    expect(failure(() => parseTargetPort('0')).message).toBe(
      '--target-port must be between 1 and 65535, got 0',
    );
    expect(failure(() => parseTargetPort('70000')).message).toMatch(/between 1 and 65535, got 70000/);
    for (const bad of ['HTTP', 'a--b', '-web', 'web-', 'a-very-long-port-name', '12-34']) {
      expect(failure(() => parseTargetPort(bad)).message, bad).toMatch(/^--target-port takes a port number/);
    }
  });

  it('IP families and policies', () => {
    expect(parseIPFamilies('ipv4')).toEqual(['IPv4']);
    expect(parseIPFamilies('IPv6,IPv4')).toEqual(['IPv6', 'IPv4']);
    expect(failure(() => parseIPFamilies('IPv4,IPv4')).message).toMatch(/^--ip-family must be IPv4, IPv6/);
    expect(failure(() => parseIPFamilies('IPv5')).message).toBe(
      '--ip-family must be IPv4 or IPv6, not "IPv5"',
    );
    expect(parseIPFamilyPolicy('requiredualstack')).toBe('RequireDualStack');
    expect(failure(() => parseIPFamilyPolicy('Dual')).message).toBe(
      '--ip-family-policy must be SingleStack, PreferDualStack or RequireDualStack, not "Dual"',
    );
  });
});
