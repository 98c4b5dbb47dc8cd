import { randomBytes } from 'node:crypto';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localEndpoints, PORT_ENV, portsFromEnv } from '../local/config.ts';
import { portAnswers } from '../local/processes.ts';
import { provision } from '../local/provision.ts';
import { type StackOutputs, serviceEnvironment } from '../topology/topology.ts';

/** A stage name no other test file uses: `t` + 6 random lowercase hex characters by default. */
export function uniqueStage(prefix = 't'): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/**
 * The one Glue Schema Registry every throwaway test stage uses: Glue, and moto like it, allow 10
 * registries per account and Region, and a test run provisions dozens of stages. Their topics are
 * unique per stage, so their `<topic>-value` schemas never meet.
 */
export const TEST_SCHEMA_REGISTRY = 'rowstream-tests-schemas';

/**
 * Fails fast, with what to do, when the local stack is not running: every integration test file
 * calls it first (in beforeAll), so a missing stack is one clear message, not 50 timeouts.
 */
export async function requireLocalStack(): Promise<{ endpoint: string; brokers: readonly string[] }> {
  const ports = portsFromEnv();
  const missing: string[] = [];
  if (!(await portAnswers(ports.moto)))
    missing.push(`moto (AWS) on 127.0.0.1:${ports.moto} [${PORT_ENV.moto}]`);
  if (!(await portAnswers(ports.kafka)))
    missing.push(`Kafka on 127.0.0.1:${ports.kafka} [${PORT_ENV.kafka}]`);
  if (missing.length > 0) {
    throw new Error(
      `The local stack is not running: nothing answers for ${missing.join(' and ')}. ` +
        'Run `npm run local:up` first (`npm run local:status` shows what is up).',
    );
  }
  return localEndpoints(ports);
}

/**
 * Provisions the whole topology under a fresh stage on the running local stack, so each test file
 * has its own bucket, queues, tables, bus, archive and rules, isolated from the other files and
 * from the `local` stage. `env` is what a service needs to run against it (serviceEnvironment +
 * the emulator endpoint and dummy credentials).
 */
export async function freshStack(
  prefix = 't',
): Promise<{ outputs: StackOutputs; env: Record<string, string> }> {
  const { endpoint, brokers } = await requireLocalStack();
  const outputs = await provision({
    stage: uniqueStage(prefix),
    region: LOCAL_REGION,
    endpoint,
    brokers,
    schemaRegistry: TEST_SCHEMA_REGISTRY,
  });
  const env: Record<string, string> = {
    ...serviceEnvironment(outputs),
    // What the local runner sets for the local stage: any topic but Kafka's internal ones.
    ROWSTREAM_ALLOWED_TOPICS: '*',
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    // As on the local stage (local/runner/services.ts): tests and benchmarks use throwaway topics.
    ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS: 'true',
  };
  return { outputs, env };
}
