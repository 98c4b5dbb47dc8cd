import { defineConfig } from 'vitest/config';

// Two projects: `unit` never touches the network; `integration` talks to the real local stack
// (moto server on 127.0.0.1:4566, Kafka on 127.0.0.1:9092) started by `npm run local:up`.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'tests/infra/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          // In-process handlers' JSON logs go to test-output/logs/<file>.log, shown only when a test fails.
          setupFiles: ['testkit/service-logs.ts'],
          // Files share one moto server and one broker on a 2-core machine; each file provisions its own
          // stage (unique names), but running them one at a time keeps timings honest and failures readable.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
