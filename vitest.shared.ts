// Shared vitest settings: tests read each workspace package's src/ through the source export condition,
// so no build is needed before testing.
import { defineConfig } from 'vitest/config';

export const sourceCondition = '@kubevirt-ts/source';

export default defineConfig({
  resolve: { conditions: [sourceCondition, 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: [sourceCondition, 'node', 'import', 'default'] } },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    restoreMocks: true,
  },
});
