import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { JobStatus } from '../../events/catalog.ts';
import { InventoryDefinitionError } from './errors.ts';

const Prefix = z
  .string()
  .min(1)
  .regex(
    /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/,
    'a prefix like "inbound/" (letters, digits, . _ -, ends with /)',
  );

/** The inventory definition file (inventory/metrics.yaml). */
export const InventoryDefinition = z.strictObject({
  version: z.literal(1),
  tolerancePercent: z.number().nonnegative(),
  historyDays: z.number().int().positive().default(7),
  prefixes: z
    .array(Prefix)
    .min(1)
    .refine((a) => new Set(a).size === a.length, 'prefixes must be unique'),
  jobs: z.strictObject({
    statuses: z
      .array(JobStatus)
      .min(1)
      .refine((a) => new Set(a).size === a.length, 'statuses must be unique'),
  }),
  rowsDelivered: z.strictObject({ windowHours: z.number().positive() }),
  oldestUnprocessed: z.strictObject({ prefix: Prefix }).nullable().default(null),
});
export type InventoryDefinition = z.infer<typeof InventoryDefinition>;

/** Parses and validates the YAML (or JSON) text; throws {@link InventoryDefinitionError} with the paths. */
export function parseDefinition(text: string, source = 'inventory/metrics.yaml'): InventoryDefinition {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new InventoryDefinitionError(source, `not YAML: ${(e as Error).message}`);
  }
  const result = InventoryDefinition.safeParse(raw);
  if (!result.success) throw new InventoryDefinitionError(source, z.prettifyError(result.error));
  return result.data;
}
