/**
 * The AWS Glue Schema Registry wire format (what the Glue SR serde for Java writes and reads):
 *
 *   byte 0      header version, 3
 *   byte 1      compression, 0 = none (5 = zlib; rowstream never compresses: Kafka batches are)
 *   bytes 2-17  the schema version id (a UUID), 16 bytes big-endian
 *   bytes 18-   the Avro binary encoding of the record
 */
export const GLUE_HEADER_VERSION = 3;
export const GLUE_COMPRESSION_NONE = 0;
export const GLUE_COMPRESSION_ZLIB = 5;
export const GLUE_HEADER_BYTES = 18;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The 18-byte prefix for records of schema version `versionId`. */
export function glueHeader(versionId: string): Buffer {
  if (!UUID.test(versionId)) throw new Error(`schema version id "${versionId}" is not a UUID`);
  const b = Buffer.alloc(GLUE_HEADER_BYTES);
  b[0] = GLUE_HEADER_VERSION;
  b[1] = GLUE_COMPRESSION_NONE;
  Buffer.from(versionId.replaceAll('-', ''), 'hex').copy(b, 2);
  return b;
}

/** Splits a record value into its schema version id and Avro body; null if it is not in the format. */
export function parseGlueRecord(
  value: Uint8Array,
): { versionId: string; compression: number; body: Uint8Array } | null {
  if (value.length < GLUE_HEADER_BYTES || value[0] !== GLUE_HEADER_VERSION) return null;
  const compression = value[1]!;
  if (compression !== GLUE_COMPRESSION_NONE && compression !== GLUE_COMPRESSION_ZLIB) return null;
  const hex = Buffer.from(value.subarray(2, GLUE_HEADER_BYTES)).toString('hex');
  const versionId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { versionId, compression, body: value.subarray(GLUE_HEADER_BYTES) };
}
