import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { nodeUnresponsive, vmisWithoutLivePods } from './controller.ts';

const NOW = new Date('2026-01-01T01:00:00Z');
const node = (heartbeat?: string): V1Node => ({
  metadata: { name: 'n1', ...(heartbeat ? { annotations: { 'kubevirt.io/heartbeat': heartbeat } } : {}) },
});

describe('nodeUnresponsive', () => {
  it('is true for a heartbeat older than 5 minutes or a node that is gone', () => {
    expect(nodeUnresponsive(node('2026-01-01T00:54:59Z'), NOW)).toBe(true);
    expect(nodeUnresponsive(node('2026-01-01T00:55:01Z'), NOW)).toBe(false);
    expect(nodeUnresponsive(undefined, NOW)).toBe(true);
  });

  it('is false for a node that never had a handler, and refuses to guess on a bad timestamp', () => {
    expect(nodeUnresponsive(node(), NOW)).toBe(false);
    expect(() => nodeUnresponsive(node('yesterday'), NOW)).toThrow(/not a timestamp/);
  });
});

describe('vmisWithoutLivePods', () => {
  const vmi = (uid: string): VMI => ({ metadata: { name: uid, uid }, spec: { domain: { devices: {} } } });
  const pod = (owner: string, phase: string, allTerminated = false): V1Pod => ({
    metadata: {
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachineInstance',
          name: owner,
          uid: owner,
          controller: true,
        },
      ],
    },
    status: {
      phase,
      containerStatuses: [
        {
          name: 'compute',
          image: '',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: allTerminated ? { terminated: { exitCode: 0 } } : { running: {} },
        },
      ],
    },
  });

  it('keeps only VMIs whose launcher pod is gone, failed, succeeded or fully terminated', () => {
    const vmis = ['alive', 'failed', 'gone', 'terminated'].map(vmi);
    const pods = [pod('alive', 'Running'), pod('failed', 'Failed'), pod('terminated', 'Running', true)];
    expect(vmisWithoutLivePods(vmis, pods).map((v) => v.metadata?.uid)).toEqual([
      'failed',
      'gone',
      'terminated',
    ]);
  });
});
