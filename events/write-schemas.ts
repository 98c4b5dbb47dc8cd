import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DETAIL_TYPES } from './catalog.ts';
import { jsonSchemaOf, schemaFileName } from './schemas.ts';

// Regenerates events/schemas/*.schema.json. Run after an ADDITIVE change to an event (npm run events:schemas);
// the contract test fails on any change that would break a consumer of a published version.
const dir = join(import.meta.dirname, 'schemas');
for (const t of DETAIL_TYPES) {
  const file = join(dir, schemaFileName(t));
  await writeFile(file, `${JSON.stringify(jsonSchemaOf(t), null, 2)}\n`);
  console.log(`wrote ${file}`);
}
