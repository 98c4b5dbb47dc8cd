import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BadOptionsError } from '../../../services/planner/errors.ts';
import type { ObjectStorePort } from '../../../services/planner/ports.ts';
import {
  BadSchemaError,
  parseSchemaChoice,
  SchemaIncompatibleError,
  type SchemaInput,
  schemaForEvent,
  schemaResolver,
} from '../../../services/planner/schema.ts';
import { compatibilityProblem } from '../../../services/shared/schema/avro.ts';
import { avroDefinition } from '../../../services/shared/schema/definition.ts';
import type {
  Compatibility,
  RegisteredSchema,
  SchemaRegistryPort,
} from '../../../services/shared/schema/registry.ts';

/** An in-memory registry; like moto it checks no compatibility itself. */
class FakeRegistry implements SchemaRegistryPort {
  readonly registryName = 'reg';
  readonly schemas = new Map<string, { compatibility: Compatibility; versions: RegisteredSchema[] }>();
  registrations = 0;
  async latest(name: string) {
    return this.schemas.get(name)?.versions.at(-1) ?? null;
  }
  async version(name: string, v: number) {
    return this.schemas.get(name)?.versions.find((x) => x.version === v) ?? null;
  }
  async byId(id: string) {
    for (const s of this.schemas.values()) {
      const f = s.versions.find((x) => x.versionId === id);
      if (f) return f;
    }
    throw new Error('not found');
  }
  async compatibility(name: string) {
    return this.schemas.get(name)?.compatibility ?? null;
  }
  async register(name: string, definition: string, compatibility: Compatibility) {
    this.registrations++;
    const s = this.schemas.get(name) ?? { compatibility, versions: [] };
    this.schemas.set(name, s);
    const same = s.versions.find((v) => v.definition === definition);
    if (same) return same;
    const r = {
      registry: 'reg',
      schemaName: name,
      versionId: randomUUID(),
      version: s.versions.length + 1,
      definition,
    };
    s.versions.push(r);
    return r;
  }
}

function storeOf(body: string): ObjectStorePort {
  const buf = Buffer.from(body);
  return {
    head: async () => null,
    tags: async () => ({}),
    async *read(_ref, start, end) {
      // Small chunks, so rows are cut across reads.
      for (let i = start; i < end; i += 7) yield buf.subarray(i, Math.min(i + 7, end));
    },
  };
}

function inputOf(body: string, extra: Partial<SchemaInput> = {}): SchemaInput {
  const nl = body.indexOf('\n');
  return {
    ref: { bucket: 'b', key: 'inbound/x.csv', versionId: null },
    size: Buffer.byteLength(body),
    metadata: {},
    tags: {},
    header: body.slice(0, nl).split(','),
    dataOffset: nl + 1,
    delimiter: ',',
    topic: 'orders',
    format: 'avro',
    ...extra,
  };
}

const settings = {
  defaultChoice: 'auto',
  compatibility: 'BACKWARD' as const,
  sampleBytes: 1 << 20,
  sampleRows: 1000,
};
const fieldTypes = (definition: string | undefined) =>
  (JSON.parse(definition!) as { fields: { name: string; type: unknown }[] }).fields.map((f) => [
    f.name,
    f.type,
  ]);

describe('planner schema resolution', () => {
  it('json: no schema unless one is asked for; infer stays out of the registry', async () => {
    // Prepare
    const registry = new FakeRegistry();
    const body = 'id,amount\n1,0.10\n2,\n';
    const r = schemaResolver({ store: storeOf(body), registry, settings });
    // Act
    const auto = await r.resolve(inputOf(body, { format: 'json' }));
    const inferred = await r.resolve(
      inputOf(body, { format: 'json', metadata: { 'rowstream-schema': 'infer' } }),
    );
    const csv = await r.resolve(inputOf(body, { format: 'csv', metadata: { 'rowstream-schema': 'infer' } }));
    // Assess
    expect(auto).toBeNull();
    expect(csv).toBeNull();
    expect(inferred).toMatchObject({ source: 'inferred', registry: null, versionId: null });
    expect(fieldTypes(inferred?.definition)).toEqual([
      ['id', 'long'],
      ['amount', ['null', { type: 'bytes', logicalType: 'decimal', precision: 2, scale: 2 }]],
    ]);
    expect(registry.registrations).toBe(0);
  });

  it('avro: registers <topic>-value v1, then reuses it for a file that fits', async () => {
    // Prepare
    const registry = new FakeRegistry();
    const first = 'id,name\n1,a\n2,b\n';
    const second = 'id,name\n3,c\n';
    // Act
    const a = await schemaResolver({ store: storeOf(first), registry, settings }).resolve(inputOf(first));
    const b = await schemaResolver({ store: storeOf(second), registry, settings }).resolve(inputOf(second));
    // Assess
    expect(a).toMatchObject({ source: 'inferred', registry: 'reg', schemaName: 'orders-value', version: 1 });
    expect(b).toMatchObject({ source: 'registry', version: 1, versionId: a?.versionId });
  });

  it('avro: a new column with empty values is a compatible version 2; one without is rejected BACKWARD', async () => {
    // Prepare
    const registry = new FakeRegistry();
    const v1 = 'id,name\n1,a\n';
    await schemaResolver({ store: storeOf(v1), registry, settings }).resolve(inputOf(v1));
    const nullable = 'id,name,note\n2,b,\n3,c,x\n';
    const required = 'id,name,qty\n4,d,1\n';
    // Act
    const ok = await schemaResolver({ store: storeOf(nullable), registry, settings }).resolve(
      inputOf(nullable),
    );
    const refused = schemaResolver({ store: storeOf(required), registry, settings }).resolve(
      inputOf(required),
    );
    // Assess
    expect(ok).toMatchObject({ source: 'inferred', version: 2 });
    await expect(refused).rejects.toThrow(SchemaIncompatibleError);
    await expect(refused).rejects.toThrow(
      /BACKWARD: the new schema cannot read data written with version 2.*qty/,
    );
    expect(registry.schemas.get('orders-value')?.versions).toHaveLength(2);
  });

  it('a named schema must exist and fit the file; avro needs a schema', async () => {
    // Prepare
    const registry = new FakeRegistry();
    const def = avroDefinition([
      { name: 'id', type: { kind: 'long' }, nullable: false },
      { name: 'extra', type: { kind: 'string' }, nullable: true },
    ]);
    const given = await registry.register('orders-shared', def, 'BACKWARD');
    const body = 'id\n1\n';
    const r = schemaResolver({ store: storeOf(body), registry, settings });
    // Act / Assess
    await expect(
      r.resolve(inputOf(body, { metadata: { 'rowstream-schema': 'orders-shared@1' } })),
    ).resolves.toMatchObject({ source: 'given', versionId: given.versionId });
    await expect(r.resolve(inputOf(body, { metadata: { 'rowstream-schema': 'nope' } }))).rejects.toThrow(
      BadSchemaError,
    );
    await expect(
      r.resolve(inputOf('id,other\n1,x\n', { metadata: { 'rowstream-schema': 'orders-shared' } })),
    ).rejects.toThrow(/column "other" not in the schema/);
    await expect(r.resolve(inputOf(body, { metadata: { 'rowstream-schema': 'none' } }))).rejects.toThrow(
      BadOptionsError,
    );
    expect(() => parseSchemaChoice('bad name!')).toThrow(BadOptionsError);
  });

  it('a large definition is left out of the event (the job record keeps it)', () => {
    const big = {
      source: 'inferred' as const,
      registry: null,
      schemaName: null,
      version: null,
      versionId: null,
      definition: 'x'.repeat(9000),
    };
    expect(schemaForEvent(big)).not.toHaveProperty('definition');
    expect(schemaForEvent({ ...big, definition: '{}' })).toHaveProperty('definition', '{}');
  });
});

describe('compatibilityProblem', () => {
  const v1 = avroDefinition([{ name: 'id', type: { kind: 'long' }, nullable: false }]);
  const addedOptional = avroDefinition([
    { name: 'id', type: { kind: 'long' }, nullable: false },
    { name: 'n', type: { kind: 'string' }, nullable: true },
  ]);
  const changedType = avroDefinition([{ name: 'id', type: { kind: 'string' }, nullable: false }]);
  const dec = (scale: number) =>
    avroDefinition([{ name: 'a', type: { kind: 'decimal', precision: 10, scale }, nullable: false }]);

  it('follows the Glue modes: BACKWARD, FORWARD, FULL, NONE, DISABLED', () => {
    const versions = [{ version: 1, definition: v1 }];
    expect(compatibilityProblem('BACKWARD', addedOptional, versions)).toBeNull();
    expect(compatibilityProblem('FORWARD', addedOptional, versions)).toBeNull();
    expect(compatibilityProblem('BACKWARD', changedType, versions)).toMatch(/^BACKWARD: /);
    expect(compatibilityProblem('FULL', changedType, versions)).toMatch(/^FULL: /);
    expect(compatibilityProblem('NONE', changedType, versions)).toBeNull();
    expect(compatibilityProblem('DISABLED', v1, versions)).toMatch(/DISABLED/);
  });

  it('_ALL checks every version; a decimal whose scale changed is refused (Avro would misread it)', () => {
    const versions = [
      { version: 1, definition: changedType },
      { version: 2, definition: v1 },
    ];
    expect(compatibilityProblem('BACKWARD', v1, versions)).toBeNull();
    expect(compatibilityProblem('BACKWARD_ALL', v1, versions)).toMatch(/version 1/);
    expect(compatibilityProblem('BACKWARD', dec(3), [{ version: 1, definition: dec(2) }])).toMatch(
      /decimal\(10,2\)/,
    );
  });
});
