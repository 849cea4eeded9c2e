// Builders for the unit tests: VMIs in a given phase on a node, and domains as a launcher reports them.
import { LABELS } from '../src/constants.ts';
import type { Domain, DomainState } from '../src/domain.ts';
import type { LauncherObservation } from '../src/status.ts';
import type { Phase, VMI } from '../src/vmi.ts';

export const NODE = 'node-a';
export const UID = '6f1c1d6e-0b7a-4c53-9d0e-1f2a3b4c5d6e';
export const POD_UID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

export function vmiIn(phase: Phase, extra: { deleting?: boolean; grace?: number; acpi?: boolean } = {}): VMI {
  const vmi: VMI = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: 'vm1',
      namespace: 'ns1',
      uid: UID,
      resourceVersion: '42',
      labels: { [LABELS.nodeName]: NODE },
    },
    spec: { domain: { devices: {} } },
    status: {
      phase,
      nodeName: NODE,
      activePods: { [POD_UID]: NODE },
      phaseTransitionTimestamps: [{ phase: 'Scheduled', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' }],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          lastProbeTime: null,
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    },
  };
  if (extra.deleting) vmi.metadata!.deletionTimestamp = '2026-01-01T00:01:00Z';
  if (extra.grace !== undefined) vmi.spec.terminationGracePeriodSeconds = extra.grace;
  if (extra.acpi === false) vmi.spec.domain.features = { acpi: { enabled: false } };
  return vmi;
}

export function domain(
  status: DomainState,
  reason = 'Unknown',
  extra: {
    agent?: boolean;
    deleted?: boolean;
    shutdownAt?: string;
    grace?: number;
    markedForGracefulShutdown?: boolean;
  } = {},
): Domain {
  return {
    metadata: {
      name: 'vm1',
      namespace: 'ns1',
      uid: UID,
      deletionTimestamp: extra.deleted ? '2026-01-01T00:02:00Z' : undefined,
    },
    spec: {
      name: 'ns1_vm1',
      gracePeriod: {
        deletionGracePeriodSeconds: extra.grace ?? 30,
        deletionTimestamp: extra.shutdownAt,
        markedForGracefulShutdown: extra.markedForGracefulShutdown,
      },
    },
    status: { status, reason, guestAgentConnected: extra.agent ?? false },
  };
}

export function ready(d: Domain | undefined, extra: Partial<LauncherObservation> = {}): LauncherObservation {
  return { state: 'ready', domainKnown: true, domain: d, ...extra };
}
