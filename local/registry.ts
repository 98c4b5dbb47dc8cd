import { CreateRegistryCommand, GetRegistryCommand, GlueClient } from '@aws-sdk/client-glue';
import { LOCAL_CREDENTIALS } from './config.ts';

/**
 * Creates the stage's Glue Schema Registry on the emulator if it is missing. moto 5.2.1 stores
 * schemas and versions but checks no compatibility: the planner does that itself (docs/producer.md).
 */
export async function ensureRegistry(endpoint: string, region: string, name: string): Promise<void> {
  const glue = new GlueClient({ endpoint, region, credentials: LOCAL_CREDENTIALS, maxAttempts: 3 });
  try {
    await glue.send(new GetRegistryCommand({ RegistryId: { RegistryName: name } }));
  } catch (e) {
    if ((e as { name?: string }).name !== 'EntityNotFoundException') throw e;
    try {
      await glue.send(
        new CreateRegistryCommand({
          RegistryName: name,
          Description: 'Kafka record schemas written by rowstream',
        }),
      );
    } catch (create) {
      // Test stages share a registry and provision in parallel: another one just created it.
      if ((create as { name?: string }).name !== 'AlreadyExistsException') throw create;
    }
  } finally {
    glue.destroy();
  }
}
