import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: [
      'test/setup/python-env.ts',
      'test/setup/clients.ts',
      'test/setup/state-home.ts',
      'test/setup/server-env.ts',
    ],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
    allowOnly: false,
  },
});
