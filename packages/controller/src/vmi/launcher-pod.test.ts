// The launcher pod renderer: golden files for two representative VMIs (review a change to them like code), plus
// the rules that matter most asserted one by one, so a wrong golden update cannot hide them.
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import {
  DEFAULT_CLUSTER_CONFIG,
  launcherMemoryOverhead,
  parseQuantity,
  type ClusterConfig,
} from '@kubevirt-ts/schema';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import {
  defaultPullPolicy,
  DEVICE_RESOURCES,
  LauncherPodRenderError,
  PvcNotFoundError,
  renderLauncherPod,
  vmiIdLabel,
  type LauncherPodOptions,
} from './launcher-pod.ts';

const IMAGE = 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0';

function minimalVMI(): VMI {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'tiny', namespace: 'default', uid: '11111111-2222-3333-4444-555555555555' },
    spec: {
      domain: { resources: { requests: { memory: '128Mi' } }, devices: {} },
    },
  };
}

function fullVMI(): VMI {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: 'web-1',
      namespace: 'apps',
      uid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      labels: { app: 'web', 'kubevirt.io/vm': 'web-1' },
      annotations: {
        'example.com/owner': 'team-a',
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
        'kubevirt.io/latest-observed-api-version': 'v1',
      },
    },
    spec: {
      terminationGracePeriodSeconds: 60,
      domain: {
        cpu: { sockets: 2, cores: 1, threads: 1 },
        memory: { guest: '1Gi' },
        resources: { requests: { memory: '1Gi' } },
        firmware: {
          kernelBoot: {
            kernelArgs: 'console=ttyS0',
            container: { image: 'registry.example/kernels/debian:6.1', imagePullSecret: 'kernels-pull' },
          },
        },
        devices: {
          disks: [
            { name: 'root', disk: { bus: 'virtio' } },
            { name: 'data' },
            { name: 'raw' },
            { name: 'scratch' },
            { name: 'cidata', cdrom: { bus: 'sata' } },
          ],
        },
      },
      volumes: [
        {
          name: 'root',
          containerDisk: { image: 'registry.example/disks/debian:12', imagePullSecret: 'disks-pull' },
        },
        { name: 'data', persistentVolumeClaim: { claimName: 'web-data' } },
        { name: 'raw', persistentVolumeClaim: { claimName: 'web-raw', readOnly: true } },
        { name: 'scratch', emptyDisk: { capacity: '1Gi' } },
        {
          name: 'cidata',
          cloudInitNoCloud: {
            secretRef: { name: 'web-userdata' },
            networkDataSecretRef: { name: 'web-netdata' },
          },
        },
      ],
      nodeSelector: { 'topology.kubernetes.io/zone': 'a', 'kubevirt.io/schedulable': 'false' },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'example.com/vm-host', operator: 'Exists' }] }],
          },
        },
      },
      tolerations: [{ key: 'example.com/dedicated', operator: 'Equal', value: 'vms', effect: 'NoSchedule' }],
      priorityClassName: 'vm-high',
      schedulerName: 'default-scheduler',
      hostname: 'web',
      subdomain: 'vms',
      dnsPolicy: 'ClusterFirst',
    },
  };
}

const pvcs: Record<string, V1PersistentVolumeClaim> = {
  'web-data': { metadata: { name: 'web-data' }, spec: { volumeMode: 'Filesystem' } },
  'web-raw': { metadata: { name: 'web-raw' }, spec: { volumeMode: 'Block' } },
};

function options(config: Partial<ClusterConfig> = {}): LauncherPodOptions {
  return {
    launcherImage: IMAGE,
    config: { ...DEFAULT_CLUSTER_CONFIG, ...config },
    pvc: (name) => pvcs[name],
  };
}

// Golden files are formatted as the repository's formatter formats JSON, so `prettier --check` leaves them alone.
const golden = async (value: unknown): Promise<string> => {
  const config = await resolveConfig(
    fileURLToPath(new URL('./golden/launcher-pod-full.json', import.meta.url)),
  );
  return format(`${JSON.stringify(value, null, 2)}\n`, { ...config, parser: 'json' });
};

describe('renderLauncherPod golden files', () => {
  it('renders a VMI with every supported volume kind and placement field', async () => {
    const pod = renderLauncherPod(fullVMI(), options({ nodeSelectors: { 'example.com/pool': 'vms' } }));
    await expect(await golden(pod)).toMatchFileSnapshot('./golden/launcher-pod-full.json');
  });

  it('renders a minimal VMI under software emulation', async () => {
    const pod = renderLauncherPod(minimalVMI(), options({ useEmulation: true }));
    await expect(await golden(pod)).toMatchFileSnapshot('./golden/launcher-pod-emulation.json');
  });
});

describe('renderLauncherPod rules', () => {
  it('labels, annotates and owns the pod as KubeVirt does', () => {
    const vmi = fullVMI();
    const pod = renderLauncherPod(vmi, options());
    expect(pod.metadata?.generateName).toBe('virt-launcher-web-1-');
    expect(pod.metadata?.labels).toMatchObject({
      app: 'web',
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/created-by': vmi.metadata!.uid,
      'vm.kubevirt.io/name': 'web',
      'vmi.kubevirt.io/id': 'web-1',
    });
    expect(pod.metadata?.annotations).toMatchObject({
      'kubevirt.io/domain': 'web-1',
      'example.com/owner': 'team-a',
    });
    expect(pod.metadata?.annotations).not.toHaveProperty('kubectl.kubernetes.io/last-applied-configuration');
    expect(pod.metadata?.annotations).not.toHaveProperty('kubevirt.io/latest-observed-api-version');
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        name: 'web-1',
        uid: vmi.metadata!.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.readinessGates).toEqual([{ conditionType: 'kubevirt.io/virtual-machine-unpaused' }]);
  });

  it('always requires kubevirt.io/schedulable=true, over the VMI and cluster node selectors', () => {
    const pod = renderLauncherPod(fullVMI(), options({ nodeSelectors: { 'example.com/pool': 'vms' } }));
    expect(pod.spec?.nodeSelector).toEqual({
      'example.com/pool': 'vms',
      'topology.kubernetes.io/zone': 'a',
      'kubevirt.io/schedulable': 'true',
    });
  });

  it('pads the grace period: the launcher gets the VMI’s + 15 s, the pod + 30 s', () => {
    const pod = renderLauncherPod(fullVMI(), options());
    expect(pod.spec?.terminationGracePeriodSeconds).toBe(90);
    expect(pod.spec?.containers[0]?.args).toContain('--grace-period-seconds=75');
    const defaulted = renderLauncherPod(minimalVMI(), options());
    expect(defaulted.spec?.terminationGracePeriodSeconds).toBe(60);
    expect(defaulted.spec?.containers[0]?.args).toContain('--grace-period-seconds=45');
  });

  it('passes the launcher its identity flags, and --use-emulation only under emulation', () => {
    const args = renderLauncherPod(minimalVMI(), options()).spec?.containers[0]?.args;
    expect(args).toEqual([
      '--name=tiny',
      '--namespace=default',
      '--uid=11111111-2222-3333-4444-555555555555',
      '--grace-period-seconds=45',
    ]);
    expect(
      renderLauncherPod(minimalVMI(), options({ useEmulation: true })).spec?.containers[0]?.args,
    ).toContain('--use-emulation');
  });

  it('requests tun always, kvm unless emulation is on, and vhost-net only for a virtio NIC without emulation', () => {
    const kvm = renderLauncherPod(minimalVMI(), options()).spec?.containers[0]?.resources?.limits;
    expect(kvm).toMatchObject({ [DEVICE_RESOURCES.kvm]: '1', [DEVICE_RESOURCES.tun]: '1' });
    // No NIC, no vhost-net: a node without /dev/vhost-net can run it.
    expect(kvm).not.toHaveProperty(DEVICE_RESOURCES.vhostNet);
    const withNic = (model?: 'virtio' | 'e1000'): VMI => {
      const vmi = minimalVMI();
      vmi.spec.domain.devices.interfaces = [{ name: 'default', ...(model ? { model } : {}) }];
      return vmi;
    };
    const limits = (vmi: VMI, useEmulation: boolean) =>
      renderLauncherPod(vmi, options({ useEmulation })).spec?.containers[0]?.resources?.limits;
    expect(limits(withNic(), false)).toMatchObject({ [DEVICE_RESOURCES.vhostNet]: '1' });
    expect(limits(withNic('virtio'), false)).toMatchObject({ [DEVICE_RESOURCES.vhostNet]: '1' });
    expect(limits(withNic('e1000'), false)).not.toHaveProperty(DEVICE_RESOURCES.vhostNet);
    const tcg = limits(withNic(), true);
    expect(tcg).not.toHaveProperty(DEVICE_RESOURCES.kvm);
    expect(tcg).not.toHaveProperty(DEVICE_RESOURCES.vhostNet);
    expect(tcg).toMatchObject({ [DEVICE_RESOURCES.tun]: '1' });
  });

  it('requests guest memory plus the launcher overhead, and vCPUs / cpuAllocationRatio', () => {
    const vmi = fullVMI();
    const pod = renderLauncherPod(vmi, options({ cpuAllocationRatio: 4 }));
    const requests = pod.spec?.containers[0]?.resources?.requests ?? {};
    expect(parseQuantity(requests.memory)).toBe(parseQuantity('1Gi')! + launcherMemoryOverhead(vmi.spec));
    expect(String(pod.metadata?.annotations?.['kubevirt.io/memory-overhead-bytes'])).toBe(
      String(launcherMemoryOverhead(vmi.spec)),
    );
    expect(requests.cpu).toBe('500m');
    const overcommitted = renderLauncherPod(
      { ...minimalVMI(), spec: { domain: { memory: { guest: '1Gi' }, devices: {} } } },
      options({ memoryOvercommit: 200 }),
    );
    const m = parseQuantity(overcommitted.spec?.containers[0]?.resources?.requests?.memory);
    expect(m).toBe(
      parseQuantity('512Mi')! + launcherMemoryOverhead({ domain: { memory: { guest: '1Gi' }, devices: {} } }),
    );
  });

  it('mounts the DESIGN §4a emptyDirs and one volume per disk source at the agreed paths', () => {
    const pod = renderLauncherPod(fullVMI(), options());
    const mounts = Object.fromEntries(
      (pod.spec?.containers[0]?.volumeMounts ?? []).map((m) => [m.name, m.mountPath]),
    );
    expect(mounts).toEqual({
      sockets: '/var/run/kubevirt/sockets',
      private: '/var/run/kubevirt-private',
      'libvirt-runtime': '/var/run/libvirt',
      root: '/var/run/kubevirt/container-disks/root',
      data: '/var/run/kubevirt-private/vmi-disks/data',
      'cidata-udata': '/var/run/kubevirt-private/secret/cidata',
      'cidata-ndata': '/var/run/kubevirt-private/secret/cidata-ndata',
      'kernel-boot': '/var/run/kubevirt/kernel-boot',
    });
    expect(pod.spec?.containers[0]?.volumeDevices).toEqual([{ name: 'raw', devicePath: '/dev/raw' }]);
    const volumes = Object.fromEntries((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    expect(volumes.root?.image).toEqual({
      reference: 'registry.example/disks/debian:12',
      pullPolicy: 'IfNotPresent',
    });
    expect(volumes['cidata-udata']?.secret).toEqual({ secretName: 'web-userdata' });
    expect(volumes.raw?.persistentVolumeClaim).toEqual({ claimName: 'web-raw', readOnly: true });
    expect(volumes).not.toHaveProperty('scratch');
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: 'disks-pull' }, { name: 'kernels-pull' }]);
    expect(Object.values(volumes).some((v) => v.hostPath !== undefined)).toBe(false);
  });

  it('gives hostDisk volumes a hostPath only behind the HostDisk feature gate', () => {
    const vmi = minimalVMI();
    vmi.spec.volumes = [
      { name: 'host', hostDisk: { path: '/var/lib/vms/host.img', type: 'DiskOrCreate', capacity: '1Gi' } },
    ];
    expect(() => renderLauncherPod(vmi, options())).toThrow(LauncherPodRenderError);
    expect(() => renderLauncherPod(vmi, options())).toThrow(
      /spec\.volumes\[0\]\.hostDisk: .*HostDisk feature gate/,
    );
    const pod = renderLauncherPod(vmi, options({ featureGates: ['HostDisk'] }));
    expect(pod.spec?.volumes?.find((v) => v.name === 'host')?.hostPath).toEqual({
      path: '/var/lib/vms',
      type: 'DirectoryOrCreate',
    });
    expect(pod.spec?.containers[0]?.volumeMounts?.find((m) => m.name === 'host')?.mountPath).toBe(
      '/var/lib/vms',
    );
  });

  it('refuses a VMI volume named like one of the launcher’s own volumes', () => {
    const vmi = minimalVMI();
    vmi.spec.volumes = [{ name: 'sockets', containerDisk: { image: 'x:1' } }];
    expect(() => renderLauncherPod(vmi, options())).toThrow(/spec\.volumes\[0\]: .*"sockets"/);
  });

  it('reports a missing PVC as PvcNotFoundError naming the claim', () => {
    const vmi = minimalVMI();
    vmi.spec.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'nope' } }];
    expect(() => renderLauncherPod(vmi, options())).toThrow(PvcNotFoundError);
    expect(() => renderLauncherPod(vmi, options())).toThrow(/"nope"/);
  });

  it('refuses a VMI that was never stored (no uid)', () => {
    const vmi = minimalVMI();
    delete vmi.metadata!.uid;
    expect(() => renderLauncherPod(vmi, options())).toThrow(LauncherPodRenderError);
  });

  it('is pure: the same input renders the same pod, and the VMI is not modified', () => {
    const vmi = fullVMI();
    const before = JSON.stringify(vmi);
    expect(renderLauncherPod(vmi, options())).toEqual(renderLauncherPod(vmi, options()));
    expect(JSON.stringify(vmi)).toBe(before);
  });
});

describe('helpers', () => {
  it('hashes a VMI name too long for a label as KubeVirt does', () => {
    const long = `vm-${'x'.repeat(70)}`;
    const id = vmiIdLabel(long);
    expect(id).toHaveLength(63);
    expect(id.startsWith(long.slice(0, 54))).toBe(true);
    expect(id).toMatch(/-[0-9a-f]{8}$/);
    expect(vmiIdLabel('short')).toBe('short');
  });

  it('defaults pull policies as Kubernetes does', () => {
    expect(defaultPullPolicy('registry:5000/disk')).toBe('Always');
    expect(defaultPullPolicy('disk:latest')).toBe('Always');
    expect(defaultPullPolicy('registry:5000/disk:1.0')).toBe('IfNotPresent');
    expect(defaultPullPolicy('disk@sha256:abc')).toBe('IfNotPresent');
  });
});
