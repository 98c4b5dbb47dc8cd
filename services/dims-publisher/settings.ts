import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CommonEnv, loadConfig } from '../shared/config.ts';
import { type InventoryDefinition, parseDefinition } from './definition.ts';
import { InventoryDefinitionError } from './errors.ts';

/** Every dims-publisher setting (documented in docs/operations.md). */
export const DimsEnv = CommonEnv.extend({
  ROWSTREAM_BUCKET: z.string().min(1),
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_STATE_TABLE: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_INVENTORY_FILE: z.string().min(1).optional(),
});
export type DimsConfig = z.infer<typeof DimsEnv>;

/** Parses the publisher's settings (fails fast naming a missing or wrong one). */
export function loadDimsConfig(env: NodeJS.ProcessEnv): DimsConfig {
  return loadConfig(DimsEnv, env);
}

/** The definition shipped with the code (inventory/metrics.yaml at the repository root). */
export const DEFAULT_DEFINITION_PATH = fileURLToPath(
  new URL('../../inventory/metrics.yaml', import.meta.url),
);

/** Reads and validates an inventory definition (fails at start naming the file and the problem). */
export function loadDefinition(path: string = DEFAULT_DEFINITION_PATH): InventoryDefinition {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InventoryDefinitionError(path, `cannot read: ${(e as Error).message}`);
  }
  return parseDefinition(text, path);
}
