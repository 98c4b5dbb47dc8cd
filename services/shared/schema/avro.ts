import avsc from 'avsc';
import type { RowSchema } from './definition.ts';
import type { Compatibility } from './registry.ts';
import { dateText, decimalText, timestampText } from './values.ts';
import { glueHeader, parseGlueRecord } from './wire.ts';

const types = new Map<string, avsc.Type>();

/** The avsc type of a schema definition (cached: definitions are immutable registry versions). */
export function avroType(definition: string): avsc.Type {
  let t = types.get(definition);
  if (!t) {
    t = avsc.Type.forSchema(JSON.parse(definition) as avsc.Schema);
    types.set(definition, t);
  }
  return t;
}

/** Why data written with `writer` cannot be read with `reader`; null when it can. */
export function cannotRead(reader: string, writer: string): string | null {
  try {
    avroType(reader).createResolver(avroType(writer));
  } catch (e) {
    return (e as Error).message;
  }
  // Avro's own check (avsc's resolver, Apache Avro's SchemaCompatibility) ignores logical types: a
  // decimal whose scale changed would be read with the wrong scale, silently. rowstream refuses it.
  const decimals = (d: string) => {
    const out = new Map<string, string>();
    for (const f of (JSON.parse(d) as { fields?: { name: string; type: unknown }[] }).fields ?? []) {
      const ts = Array.isArray(f.type) ? f.type : [f.type];
      for (const t of ts) {
        const o = t as { logicalType?: string; precision?: number; scale?: number };
        if (o && typeof o === 'object' && o.logicalType)
          out.set(f.name, `${o.logicalType}(${o.precision ?? ''},${o.scale ?? 0})`);
      }
    }
    return out;
  };
  const r = decimals(reader);
  for (const [name, w] of decimals(writer)) {
    const rt = r.get(name);
    if (rt !== undefined && rt !== w) return `field "${name}": ${w} written, read as ${rt}`;
  }
  return null;
}

/**
 * Checks a candidate version against the existing versions (oldest first) under the schema's
 * compatibility mode, as the Glue Schema Registry defines them: BACKWARD = the candidate reads data
 * of the newest version, FORWARD = the newest reads the candidate's data, FULL = both; `_ALL` = against
 * every version. Returns the reason it breaks compatibility, or null.
 */
export function compatibilityProblem(
  mode: Compatibility,
  candidate: string,
  versions: readonly { version: number; definition: string }[],
): string | null {
  if (mode === 'NONE' || versions.length === 0) return null;
  if (mode === 'DISABLED') return 'the schema accepts no new versions (compatibility DISABLED)';
  const against = mode.endsWith('_ALL') ? versions : versions.slice(-1);
  const backward = mode.startsWith('BACKWARD') || mode.startsWith('FULL');
  const forward = mode.startsWith('FORWARD') || mode.startsWith('FULL');
  for (const v of against) {
    if (backward) {
      const why = cannotRead(candidate, v.definition);
      if (why) return `${mode}: the new schema cannot read data written with version ${v.version}: ${why}`;
    }
    if (forward) {
      const why = cannotRead(v.definition, candidate);
      if (why) return `${mode}: version ${v.version} cannot read data written with the new schema: ${why}`;
    }
  }
  return null;
}

/** Encodes Avro records in the Glue Schema Registry wire format for one schema version. */
export function glueAvroWriter(
  definition: string,
  versionId: string,
): (record: Record<string, unknown>) => Buffer {
  const type = avroType(definition);
  const header = glueHeader(versionId);
  return (record) => {
    const body = type.toBuffer(record);
    const out = Buffer.allocUnsafe(header.length + body.length);
    header.copy(out, 0);
    body.copy(out, header.length);
    return out;
  };
}

/** A decoded record's values made readable: decimals as text, dates and timestamps as ISO 8601. */
export function humanize(schema: RowSchema, record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const v = record[f.name];
    if (v === null || v === undefined) out[f.name] = null;
    else if (f.type.kind === 'decimal') out[f.name] = decimalText(v as Buffer, f.type.scale);
    else if (f.type.kind === 'date') out[f.name] = dateText(v as number);
    else if (f.type.kind === 'timestamp')
      out[f.name] = timestampText(f.millis ? (v as number) * 1000 : (v as number));
    else out[f.name] = v;
  }
  return out;
}

/**
 * Decodes one Glue-framed Avro record: the header's version id, looked up through `schemaOf`, gives
 * the writer's schema. zlib-compressed bodies (the Java serde's option) are inflated.
 */
export async function decodeGlueAvro(
  value: Uint8Array,
  schemaOf: (versionId: string) => Promise<string>,
): Promise<{ versionId: string; definition: string; record: Record<string, unknown> } | null> {
  const parsed = parseGlueRecord(value);
  if (!parsed) return null;
  let body = Buffer.from(parsed.body);
  if (parsed.compression !== 0) {
    const { inflateSync } = await import('node:zlib');
    body = inflateSync(body);
  }
  const definition = await schemaOf(parsed.versionId);
  const record = avroType(definition).fromBuffer(body) as Record<string, unknown>;
  return { versionId: parsed.versionId, definition, record };
}
