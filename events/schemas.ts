import { z } from 'zod';
import { CATALOG, type DetailType } from './catalog.ts';

/** The JSON Schema of one event version's detail, as published in events/schemas/. */
export function jsonSchemaOf(detailType: DetailType): Record<string, unknown> {
  return z.toJSONSchema(CATALOG[detailType].schema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
}

export function schemaFileName(detailType: DetailType): string {
  return `${detailType}.schema.json`;
}

interface ObjectSchema {
  type?: string | string[];
  properties?: Record<string, ObjectSchema>;
  required?: string[];
  items?: ObjectSchema;
  anyOf?: ObjectSchema[];
  enum?: unknown[];
}

/**
 * Compares a published schema with the current one and lists what breaks consumers within a major
 * version: a removed field, a field that became required, a changed type, a narrowed enum.
 */
export function breakingChanges(published: ObjectSchema, current: ObjectSchema, path = '$'): string[] {
  const out: string[] = [];
  const typeOf = (s: ObjectSchema | undefined) => JSON.stringify(s?.type ?? (s?.anyOf ? 'anyOf' : null));
  if (typeOf(published) !== typeOf(current))
    out.push(`${path}: type changed from ${typeOf(published)} to ${typeOf(current)}`);
  if (published.enum) {
    for (const v of published.enum) {
      if (!current.enum?.includes(v)) out.push(`${path}: enum value ${JSON.stringify(v)} removed`);
    }
  }
  for (const [name, sub] of Object.entries(published.properties ?? {})) {
    const now = current.properties?.[name];
    if (!now) {
      out.push(`${path}.${name}: field removed`);
      continue;
    }
    out.push(...breakingChanges(sub, now, `${path}.${name}`));
  }
  const wasRequired = new Set(published.required ?? []);
  for (const name of current.required ?? []) {
    if (!wasRequired.has(name)) out.push(`${path}.${name}: new required field (add fields only as optional)`);
  }
  if (published.items && current.items)
    out.push(...breakingChanges(published.items, current.items, `${path}[]`));
  if (published.anyOf && current.anyOf) {
    published.anyOf.forEach((s, i) => {
      const c = current.anyOf?.[i];
      if (c) out.push(...breakingChanges(s, c, `${path}|${i}`));
    });
  }
  return out;
}
