import { describe, expect, it } from 'vitest';
import { DEFAULT_CLUSTER_CONFIG, clusterConfigFrom } from './config.ts';
import { defaultVirtualMachineInstanceSpec } from './defaults.ts';
import { MEMORY_OVERHEAD, launcherComputeResources, launcherMemoryOverhead } from './overhead.ts';
import { parseQuantity } from './quantity.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';

const Mi = 2 ** 20;
const spec = (domain: Partial<VirtualMachineInstanceSpec['domain']>): VirtualMachineInstanceSpec =>
  defaultVirtualMachineInstanceSpec<VirtualMachineInstanceSpec>({ domain: { devices: {}, ...domain } });

describe('launcherMemoryOverhead', () => {
  it("matches KubeVirt's figure for 1 vCPU and 128 MiB (about 288 MiB)", () => {
    const overhead = launcherMemoryOverhead(spec({ resources: { requests: { memory: '128Mi' } } }));
    // 240 Mi of processes + 8 Mi per vCPU + 8 Mi I/O thread + 32 Mi video + 128Mi/512 of page tables.
    expect(overhead).toBe(288 * Mi + Math.floor((Math.ceil((128 * Mi) / 1000) * 1000) / 512));
    expect(overhead / Mi).toBeCloseTo(288.25, 1);
  });

  it('grows by 8 MiB per vCPU', () => {
    const one = launcherMemoryOverhead(spec({ memory: { guest: '1Gi' } }));
    const four = launcherMemoryOverhead(spec({ memory: { guest: '1Gi' }, cpu: { sockets: 2, cores: 2 } }));
    expect(four - one).toBe(3 * MEMORY_OVERHEAD.perVcpu);
  });

  it('sizes page tables from the guest memory when no request is set', () => {
    const small = launcherMemoryOverhead(spec({ memory: { guest: '1Gi' } }));
    const large = launcherMemoryOverhead(spec({ memory: { guest: '8Gi' } }));
    expect(large - small).toBe(
      Math.floor((Math.ceil((8 * 2 ** 30) / 1000) * 1000) / 512) -
        Math.floor((Math.ceil(2 ** 30 / 1000) * 1000) / 512),
    );
  });

  it("adds KubeVirt's 250 MiB for passt to a VMI with a passtBinding interface, after the overhead ratio", () => {
    const devices = (binding: Record<string, unknown>) => ({
      interfaces: [{ name: 'default', ...binding }],
    });
    const masquerade = spec({ memory: { guest: '1Gi' }, devices: devices({ masquerade: {} }) });
    const passt = spec({ memory: { guest: '1Gi' }, devices: devices({ passtBinding: {} }) });
    expect(launcherMemoryOverhead(passt) - launcherMemoryOverhead(masquerade)).toBe(250 * Mi);
    const doubled = clusterConfigFrom({
      spec: { configuration: { additionalGuestMemoryOverheadRatio: '2' } },
    });
    expect(launcherMemoryOverhead(passt, doubled) - launcherMemoryOverhead(masquerade, doubled)).toBe(
      250 * Mi,
    );
  });

  it('drops the video RAM without a graphics device', () => {
    const withVideo = launcherMemoryOverhead(spec({ memory: { guest: '1Gi' } }));
    const without = launcherMemoryOverhead(
      spec({ memory: { guest: '1Gi' }, devices: { autoattachGraphicsDevice: false } }),
    );
    expect(withVideo - without).toBe(MEMORY_OVERHEAD.video);
  });

  it('adds 100 MiB for guaranteed QoS', () => {
    const burstable = launcherMemoryOverhead(spec({ resources: { requests: { memory: '1Gi', cpu: '1' } } }));
    const guaranteed = launcherMemoryOverhead(
      spec({ resources: { requests: { memory: '1Gi', cpu: '1' }, limits: { memory: '1Gi', cpu: '1' } } }),
    );
    expect(guaranteed - burstable).toBe(MEMORY_OVERHEAD.guaranteedQoS);
  });

  it('multiplies by additionalGuestMemoryOverheadRatio', () => {
    const s = spec({ memory: { guest: '1Gi' } });
    const config = clusterConfigFrom({
      spec: { configuration: { additionalGuestMemoryOverheadRatio: '2' } },
    });
    expect(launcherMemoryOverhead(s, config)).toBe(2 * launcherMemoryOverhead(s));
  });
});

describe('launcherComputeResources', () => {
  it('requests guest memory plus overhead, and vCPUs / cpuAllocationRatio', () => {
    const s = spec({ memory: { guest: '1Gi' }, cpu: { sockets: 2 } });
    const resources = launcherComputeResources(s);
    expect(resources.requests.cpu).toBe('200m');
    expect(parseQuantity(resources.requests.memory)).toBe(2 ** 30 + launcherMemoryOverhead(s));
    expect(resources.limits).toEqual({});
  });

  it('applies memoryOvercommit to the guest memory, not to the overhead', () => {
    const s = spec({ memory: { guest: '1Gi' } });
    const config = clusterConfigFrom({
      spec: { configuration: { developerConfiguration: { memoryOvercommit: 200 } } },
    });
    expect(parseQuantity(launcherComputeResources(s, config).requests.memory)).toBe(
      2 ** 29 + launcherMemoryOverhead(s, config),
    );
  });

  it('keeps the VMI requests and adds the overhead to the memory limit', () => {
    const s = spec({
      resources: { requests: { memory: '512Mi', cpu: '1' }, limits: { memory: '1Gi', cpu: '2' } },
    });
    const overhead = launcherMemoryOverhead(s, DEFAULT_CLUSTER_CONFIG);
    const resources = launcherComputeResources(s);
    expect(resources.requests.cpu).toBe('1');
    expect(parseQuantity(resources.requests.memory)).toBe(512 * Mi + overhead);
    expect(resources.limits.cpu).toBe('2');
    expect(parseQuantity(resources.limits.memory)).toBe(2 ** 30 + overhead);
  });

  it('leaves the overhead out of the request with overcommitGuestOverhead', () => {
    const s = spec({ resources: { requests: { memory: '512Mi' }, overcommitGuestOverhead: true } });
    expect(launcherComputeResources(s).requests.memory).toBe('512Mi');
  });
});
