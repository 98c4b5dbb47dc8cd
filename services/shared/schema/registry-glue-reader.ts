import {
  GetSchemaVersionCommand,
  type GetSchemaVersionCommandOutput,
  type GlueClient,
} from '@aws-sdk/client-glue';
import { type RegisteredSchema, type SchemaReaderPort, SchemaRegistryError } from './registry.ts';

/** A Glue answer for one version as a {@link RegisteredSchema}. */
export function registeredFrom(
  registryName: string,
  schemaName: string,
  out: GetSchemaVersionCommandOutput,
): RegisteredSchema {
  if (!out.SchemaVersionId || out.VersionNumber === undefined || !out.SchemaDefinition) {
    throw new SchemaRegistryError(`registry ${registryName}: incomplete answer for schema ${schemaName}`);
  }
  return {
    registry: registryName,
    schemaName,
    versionId: out.SchemaVersionId,
    version: out.VersionNumber,
    definition: out.SchemaDefinition,
  };
}

/**
 * {@link SchemaReaderPort} over the Glue Schema Registry API: GetSchemaVersion by id, cached (a
 * version never changes). Its own module so that what only reads (the producer) needs only
 * `glue:GetSchemaVersion` (tests/infra/iam.test.ts follows imports).
 */
export function glueSchemaReader(glue: GlueClient, registryName: string): SchemaReaderPort {
  const cache = new Map<string, Promise<RegisteredSchema>>();
  return {
    registryName,
    byId(versionId) {
      let p = cache.get(versionId);
      if (!p) {
        p = glue.send(new GetSchemaVersionCommand({ SchemaVersionId: versionId })).then((out) => {
          // The schema ARN ends in <registry>/<schema name>.
          const arn = out.SchemaArn ?? '';
          return registeredFrom(registryName, arn.slice(arn.lastIndexOf('/') + 1) || '?', out);
        });
        p.catch(() => cache.delete(versionId));
        cache.set(versionId, p);
      }
      return p;
    },
  };
}
