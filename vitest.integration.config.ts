// Integration and end-to-end suites: real API server (devcluster), real libvirt/QEMU. One file at a time, since
// they share one cluster; each file gets its own namespace through the harness. The e2e files run last, in name
// order (test/e2e/sequencer.ts says why).
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from './vitest.shared.ts';
import IntegrationSequencer from './test/e2e/sequencer.ts';

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: ['packages/*/test/**/*.test.ts', 'test/e2e/**/*.test.ts'],
      fileParallelism: false,
      testTimeout: 120_000,
      hookTimeout: 180_000,
      sequence: { sequencer: IntegrationSequencer },
    },
  }),
);
