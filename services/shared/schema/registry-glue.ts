import {
  CreateSchemaCommand,
  EntityNotFoundException,
  GetSchemaByDefinitionCommand,
  GetSchemaCommand,
  GetSchemaVersionCommand,
  type GetSchemaVersionCommandOutput,
  type GlueClient,
  RegisterSchemaVersionCommand,
} from '@aws-sdk/client-glue';
import {
  COMPATIBILITIES,
  type Compatibility,
  type RegisteredSchema,
  SchemaRegistryError,
  type SchemaRegistryPort,
} from './registry.ts';
import { glueSchemaReader, registeredFrom } from './registry-glue-reader.ts';

export interface GlueRegistryOptions {
  /** How long to wait for a new version to leave PENDING (AWS checks compatibility asynchronously). */
  readonly settleMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const notFound = (e: unknown) =>
  e instanceof EntityNotFoundException || (e as { name?: string })?.name === 'EntityNotFoundException';

/**
 * {@link SchemaRegistryPort} over the Glue Schema Registry API (no Glue serde library: the AWS one is
 * Java-only; the wire format is in wire.ts). Used by the planner, which decides and registers schemas.
 */
export function glueRegistry(
  glue: GlueClient,
  registryName: string,
  options: GlueRegistryOptions = {},
): SchemaRegistryPort {
  const settleMs = options.settleMs ?? 30_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const reader = glueSchemaReader(glue, registryName);
  const schemaId = (schemaName: string) => ({ RegistryName: registryName, SchemaName: schemaName });

  const toRegistered = (schemaName: string, out: GetSchemaVersionCommandOutput) =>
    registeredFrom(registryName, schemaName, out);

  const getVersion = async (
    schemaName: string,
    number: { LatestVersion: true } | { VersionNumber: number },
  ): Promise<RegisteredSchema | null> => {
    try {
      const out = await glue.send(
        new GetSchemaVersionCommand({ SchemaId: schemaId(schemaName), SchemaVersionNumber: number }),
      );
      return toRegistered(schemaName, out);
    } catch (e) {
      if (notFound(e)) return null;
      throw e;
    }
  };

  /** Waits until a new version is AVAILABLE; FAILURE means Glue found it incompatible. */
  const settle = async (schemaName: string, versionId: string): Promise<RegisteredSchema> => {
    const deadline = Date.now() + settleMs;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
      const out = await glue.send(new GetSchemaVersionCommand({ SchemaVersionId: versionId }));
      if (out.Status === 'FAILURE' || out.Status === 'DELETING') {
        throw new SchemaRegistryError(
          `registry ${registryName} refused version ${out.VersionNumber} of ${schemaName} (status ${out.Status}: not compatible with earlier versions)`,
        );
      }
      if (out.Status === undefined || out.Status === 'AVAILABLE') return toRegistered(schemaName, out);
      if (Date.now() > deadline) {
        throw new SchemaRegistryError(
          `registry ${registryName}: version of ${schemaName} still ${out.Status}`,
        );
      }
      await sleep(delay);
    }
  };

  return {
    registryName,
    latest: (schemaName) => getVersion(schemaName, { LatestVersion: true }),
    version: (schemaName, version) => getVersion(schemaName, { VersionNumber: version }),
    byId: reader.byId,
    async compatibility(schemaName) {
      try {
        const out = await glue.send(new GetSchemaCommand({ SchemaId: schemaId(schemaName) }));
        const c = out.Compatibility as Compatibility | undefined;
        return c && (COMPATIBILITIES as readonly string[]).includes(c) ? c : 'BACKWARD';
      } catch (e) {
        if (notFound(e)) return null;
        throw e;
      }
    },
    async register(schemaName, definition, compatibility) {
      try {
        const found = await glue.send(
          new GetSchemaByDefinitionCommand({ SchemaId: schemaId(schemaName), SchemaDefinition: definition }),
        );
        if (found.SchemaVersionId && found.Status !== 'FAILURE')
          return settle(schemaName, found.SchemaVersionId);
      } catch (e) {
        if (!notFound(e)) throw e;
      }
      try {
        const created = await glue.send(
          new CreateSchemaCommand({
            RegistryId: { RegistryName: registryName },
            SchemaName: schemaName,
            DataFormat: 'AVRO',
            Compatibility: compatibility,
            SchemaDefinition: definition,
            Description: 'Kafka record values written by rowstream',
          }),
        );
        if (created.SchemaVersionId) return settle(schemaName, created.SchemaVersionId);
      } catch (e) {
        // Another planner created it a moment ago: register the version instead.
        if ((e as { name?: string })?.name !== 'AlreadyExistsException') throw e;
      }
      const out = await glue.send(
        new RegisterSchemaVersionCommand({ SchemaId: schemaId(schemaName), SchemaDefinition: definition }),
      );
      if (!out.SchemaVersionId)
        throw new SchemaRegistryError(`registry ${registryName}: no version id returned`);
      return settle(schemaName, out.SchemaVersionId);
    },
  };
}
