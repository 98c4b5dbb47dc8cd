import { type JobOptions, type RecordFormat, RecordHeaders } from '../../events/catalog.ts';
import { isSupportedDelimiter, SUPPORTED_DELIMITERS_TEXT } from '../shared/csv.ts';
import { type TopicPolicy, topicRefusal } from '../shared/topics.ts';
import { BadOptionsError } from './errors.ts';

/** Planner-wide defaults, from configuration. */
export interface OptionDefaults {
  readonly topic: string;
  readonly format: RecordFormat;
  readonly keyColumn: string | null;
  readonly failOnBadRow: boolean;
  readonly delimiter: string;
  /** Which topics a per-object override may name (ROWSTREAM_ALLOWED_TOPICS); unset = only `topic`. */
  readonly allowedTopics?: TopicPolicy;
}

/**
 * Per-object settings: S3 user metadata (`x-amz-meta-rowstream-topic` arrives from HEAD as
 * `rowstream-topic`) and object tags with the same names. Metadata wins over tags, tags over defaults:
 * metadata is fixed at upload by whoever wrote the file, tags are the after-the-fact escape hatch.
 */
export const OPTION_KEYS = {
  topic: 'rowstream-topic',
  keyColumn: 'rowstream-key-column',
  format: 'rowstream-format',
  failOnBadRow: 'rowstream-fail-on-bad-row',
  delimiter: 'rowstream-delimiter',
  header: 'rowstream-header',
  recordHeaders: 'rowstream-record-headers',
} as const;

/**
 * `rowstream-header`: `auto` (default) rejects a first row that looks like data (it would travel in
 * events and the job record); `present` takes the first row as the header whatever it looks like;
 * `none` means the file has no header: columns are named col_1..col_N and the first row is data.
 */
export const HEADER_MODES = ['auto', 'present', 'none'] as const;
export type HeaderMode = (typeof HEADER_MODES)[number];

export function resolveHeaderMode(overrides: Partial<Record<keyof typeof OPTION_KEYS, string>>): HeaderMode {
  const raw = overrides.header;
  if (raw === undefined || raw === '') return 'auto';
  const v = raw.toLowerCase();
  if ((HEADER_MODES as readonly string[]).includes(v)) return v as HeaderMode;
  throw new BadOptionsError(`${OPTION_KEYS.header} must be one of ${HEADER_MODES.join(', ')}`);
}

// Kafka's own rule (kafka.common.internals.Topic): 1-249 of [a-zA-Z0-9._-], not "." or "..".
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

export function isLegalTopic(name: string): boolean {
  return TOPIC.test(name) && name !== '.' && name !== '..';
}

/** Reads the raw per-object overrides (lower-cased names) from metadata and tags. */
export function rawOverrides(
  metadata: Readonly<Record<string, string>>,
  tags: Readonly<Record<string, string>>,
): Partial<Record<keyof typeof OPTION_KEYS, string>> {
  const lower = (r: Readonly<Record<string, string>>) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]));
  const m = lower(metadata);
  const t = lower(tags);
  const out: Partial<Record<keyof typeof OPTION_KEYS, string>> = {};
  for (const [name, key] of Object.entries(OPTION_KEYS) as [keyof typeof OPTION_KEYS, string][]) {
    const v = m[key] ?? t[key];
    if (v !== undefined) out[name] = v.trim();
  }
  return out;
}

/** The delimiter alone: needed before the header is parsed. */
export function resolveDelimiter(
  overrides: Partial<Record<keyof typeof OPTION_KEYS, string>>,
  defaults: OptionDefaults,
): string {
  const raw = overrides.delimiter;
  if (raw === undefined) return defaults.delimiter;
  const d = raw === '\\t' || raw.toLowerCase() === 'tab' ? '\t' : raw;
  if (!isSupportedDelimiter(d)) {
    throw new BadOptionsError(`${OPTION_KEYS.delimiter} must be one of ${SUPPORTED_DELIMITERS_TEXT}`);
  }
  return d;
}

/**
 * Merges defaults and overrides and validates them against the header. Throws {@link BadOptionsError}
 * naming the setting and the value.
 */
export function resolveOptions(
  overrides: Partial<Record<keyof typeof OPTION_KEYS, string>>,
  defaults: OptionDefaults,
  header: readonly string[],
): { topic: string; options: JobOptions } {
  const topic = overrides.topic ?? defaults.topic;
  if (!isLegalTopic(topic)) {
    throw new BadOptionsError(
      `${OPTION_KEYS.topic} is not a legal Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)`,
    );
  }
  const refusal = topicRefusal(topic, defaults.allowedTopics ?? { kind: 'list', topics: [defaults.topic] });
  if (refusal) throw new BadOptionsError(`${OPTION_KEYS.topic} "${topic}" is not allowed: ${refusal}`);
  let format: RecordFormat = defaults.format;
  if (overrides.format !== undefined) {
    const f = overrides.format.toLowerCase();
    if (f !== 'json' && f !== 'csv' && f !== 'avro') {
      throw new BadOptionsError(
        `${OPTION_KEYS.format} must be json, csv or avro (got "${overrides.format}")`,
      );
    }
    format = f;
  }
  let failOnBadRow = defaults.failOnBadRow;
  if (overrides.failOnBadRow !== undefined) {
    const v = overrides.failOnBadRow.toLowerCase();
    if (!['true', 'false', '1', '0'].includes(v)) {
      throw new BadOptionsError(`${OPTION_KEYS.failOnBadRow} must be true or false`);
    }
    failOnBadRow = v === 'true' || v === '1';
  }
  const keyColumn = overrides.keyColumn === undefined ? defaults.keyColumn : overrides.keyColumn || null;
  if (keyColumn !== null && !header.includes(keyColumn)) {
    // Neither the value nor the header's names: a headerless file's "header" is its first row.
    throw new BadOptionsError(
      `${OPTION_KEYS.keyColumn} does not name a column of the header (${header.length} columns)`,
    );
  }
  const delimiter = resolveDelimiter(overrides, defaults);
  // The record format: per object when given (else the producer's own setting decides).
  let recordHeaders: RecordHeaders | undefined;
  if (overrides.recordHeaders !== undefined && overrides.recordHeaders !== '') {
    const parsed = RecordHeaders.safeParse(overrides.recordHeaders.toLowerCase());
    if (!parsed.success) {
      throw new BadOptionsError(
        `${OPTION_KEYS.recordHeaders} must be one of ${RecordHeaders.options.join(', ')} (got "${overrides.recordHeaders}")`,
      );
    }
    recordHeaders = parsed.data;
  }
  return {
    topic,
    options: { format, keyColumn, failOnBadRow, delimiter, ...(recordHeaders ? { recordHeaders } : {}) },
  };
}
