// Unit tests of every package in one run (parallel), so CI prints one summary. Integration suites: vitest.integration.config.ts.
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from './vitest.shared.ts';

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: [
        'packages/*/src/**/*.test.ts',
        'scripts/**/*.test.ts',
        'charts/*/test/**/*.test.ts',
        'test/bundle/**/*.test.ts',
      ],
    },
  }),
);
