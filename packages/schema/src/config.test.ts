import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CLUSTER_CONFIG,
  clusterConfigFrom,
  featureGateEnabled,
  machineTypeAllowed,
} from './config.ts';
import type { KubeVirt } from './types/kubevirt.ts';

describe('clusterConfigFrom', () => {
  it("gives KubeVirt's defaults without a CR", () => {
    expect(clusterConfigFrom(undefined)).toEqual(DEFAULT_CLUSTER_CONFIG);
    expect(clusterConfigFrom(null).machineType).toBe('q35');
    expect(DEFAULT_CLUSTER_CONFIG.cpuAllocationRatio).toBe(10);
    expect(DEFAULT_CLUSTER_CONFIG.memoryOvercommit).toBe(100);
  });

  it('reads the knobs of DESIGN.md §4b', () => {
    const kv: KubeVirt = {
      spec: {
        configuration: {
          developerConfiguration: {
            useEmulation: true,
            featureGates: ['HostDisk'],
            cpuAllocationRatio: 4,
            memoryOvercommit: 150,
          },
          network: { defaultNetworkInterface: 'masquerade' },
          migrations: { parallelMigrationsPerCluster: 1, allowPostCopy: true },
          machineType: 'pc-q35-rhel9.4.0',
          cpuModel: 'Haswell',
        },
      },
    };
    const config = clusterConfigFrom(kv);
    expect(config.useEmulation).toBe(true);
    expect(config.featureGates).toEqual(['HostDisk']);
    expect(config.cpuAllocationRatio).toBe(4);
    expect(config.memoryOvercommit).toBe(150);
    expect(config.defaultNetworkInterface).toBe('masquerade');
    expect(config.migrations.parallelMigrationsPerCluster).toBe(1);
    expect(config.migrations.parallelOutboundMigrationsPerNode).toBe(2);
    expect(config.migrations.allowPostCopy).toBe(true);
    expect(config.machineType).toBe('pc-q35-rhel9.4.0');
    expect(config.cpuModel).toBe('Haswell');
  });

  it('ignores fields of the wrong type instead of failing', () => {
    const kv = {
      spec: { configuration: { developerConfiguration: { useEmulation: 'yes', cpuAllocationRatio: -1 } } },
    } as unknown as KubeVirt;
    const config = clusterConfigFrom(kv);
    expect(config.useEmulation).toBe(false);
    expect(config.cpuAllocationRatio).toBe(10);
  });
});

describe('featureGateEnabled', () => {
  it('is on when listed and not disabled', () => {
    const on = clusterConfigFrom({
      spec: { configuration: { developerConfiguration: { featureGates: ['HostDisk'] } } },
    });
    expect(featureGateEnabled(on, 'HostDisk')).toBe(true);
    expect(featureGateEnabled(DEFAULT_CLUSTER_CONFIG, 'HostDisk')).toBe(false);
    const off = { ...on, disabledFeatureGates: ['HostDisk'] };
    expect(featureGateEnabled(off, 'HostDisk')).toBe(false);
  });

  it('treats a beta gate (PasstBinding) as on unless disabledFeatureGates lists it', () => {
    expect(featureGateEnabled(DEFAULT_CLUSTER_CONFIG, 'PasstBinding')).toBe(true);
    const off = clusterConfigFrom({
      spec: {
        configuration: {
          developerConfiguration: { featureGates: ['PasstBinding'], disabledFeatureGates: ['PasstBinding'] },
        },
      },
    });
    expect(featureGateEnabled(off, 'PasstBinding')).toBe(false);
  });
});

describe('machineTypeAllowed', () => {
  it("matches KubeVirt's default globs", () => {
    expect(machineTypeAllowed(DEFAULT_CLUSTER_CONFIG, 'q35')).toBe(true);
    expect(machineTypeAllowed(DEFAULT_CLUSTER_CONFIG, 'pc-q35-8.2')).toBe(true);
    expect(machineTypeAllowed(DEFAULT_CLUSTER_CONFIG, 'pc-i440fx-8.2')).toBe(false);
    expect(
      machineTypeAllowed({ ...DEFAULT_CLUSTER_CONFIG, emulatedMachines: ['pc-q35-?.?'] }, 'pc-q35-8.2'),
    ).toBe(true);
  });
});
