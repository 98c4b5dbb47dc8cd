import { describe, expect, it } from 'vitest';
import type { Log, LogAttributes } from '../../services/shared/logger.ts';
import {
  FATE_TAGS,
  fateTagSet,
  type ObjectTagsPort,
  recordSourceFate,
  type SourceRef,
} from '../../services/shared/source-fate.ts';

/** Tags per object version, as S3 keeps them; counts the writes. */
function fakeTags(initial: Record<string, Record<string, string>> = {}) {
  const byVersion = new Map(Object.entries(initial));
  const id = (r: SourceRef) => `${r.key}@${r.versionId}`;
  let puts = 0;
  let failing: Error | null = null;
  const port: ObjectTagsPort = {
    async get(ref) {
      if (failing) throw failing;
      return { ...(byVersion.get(id(ref)) ?? {}) };
    },
    async put(ref, tags) {
      if (failing) throw failing;
      puts++;
      byVersion.set(id(ref), { ...tags });
    },
  };
  return {
    port,
    tagsOf: (key: string, versionId: string) => byVersion.get(`${key}@${versionId}`),
    puts: () => puts,
    fail: (e: Error) => {
      failing = e;
    },
  };
}

function memoryLog() {
  const warnings: LogAttributes[] = [];
  const log: Log = {
    debug() {},
    info() {},
    warn(_m, a) {
      warnings.push(a ?? {});
    },
    error() {},
    child() {
      return log;
    },
  };
  return { log, warnings };
}

const ref = (versionId: string): SourceRef => ({ bucket: 'b', key: 'inbound/a.csv', versionId });

describe('source object fate', () => {
  it('tags the exact version with job id and outcome, keeping its other tags', async () => {
    const s3 = fakeTags({ 'inbound/a.csv@v1': { owner: 'team-a' }, 'inbound/a.csv@v2': { owner: 'x' } });
    const { log } = memoryLog();
    expect(await recordSourceFate(s3.port, ref('v1'), { jobId: 'j1', outcome: 'COMPLETED' }, log)).toBe(
      'tagged',
    );
    expect(s3.tagsOf('inbound/a.csv', 'v1')).toEqual({
      owner: 'team-a',
      [FATE_TAGS.job]: 'j1',
      [FATE_TAGS.outcome]: 'COMPLETED',
    });
    expect(s3.tagsOf('inbound/a.csv', 'v2')).toEqual({ owner: 'x' });
  });

  it('a replayed end re-tags nothing: the same values are not written again', async () => {
    const s3 = fakeTags();
    const { log } = memoryLog();
    await recordSourceFate(s3.port, ref('v1'), { jobId: 'j1', outcome: 'FAILED' }, log);
    expect(await recordSourceFate(s3.port, ref('v1'), { jobId: 'j1', outcome: 'FAILED' }, log)).toBe(
      'unchanged',
    );
    expect(s3.puts()).toBe(1);
    // A resumed job that then completes moves the outcome on.
    await recordSourceFate(s3.port, ref('v1'), { jobId: 'j1', outcome: 'COMPLETED' }, log);
    expect(s3.tagsOf('inbound/a.csv', 'v1')?.[FATE_TAGS.outcome]).toBe('COMPLETED');
  });

  it('a failure to tag is logged with the job id and never thrown', async () => {
    const s3 = fakeTags();
    s3.fail(new Error('AccessDenied'));
    const { log, warnings } = memoryLog();
    expect(await recordSourceFate(s3.port, ref('v1'), { jobId: 'j9', outcome: 'REJECTED' }, log)).toBe(
      'failed',
    );
    expect(warnings).toEqual([
      expect.objectContaining({ jobId: 'j9', outcome: 'REJECTED', error: 'AccessDenied' }),
    ]);
  });

  it('never drops the uploader tags to fit ours (S3 allows 10)', async () => {
    const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, 'v']));
    expect(() => fateTagSet(ten, { jobId: 'j', outcome: 'COMPLETED' })).toThrow(/10/);
    const nine = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`t${i}`, 'v']));
    expect(Object.keys(fateTagSet(nine, { jobId: 'j', outcome: 'COMPLETED' }) ?? {})).toHaveLength(10);
    const s3 = fakeTags({ 'inbound/a.csv@v1': ten });
    const { log, warnings } = memoryLog();
    expect(await recordSourceFate(s3.port, ref('v1'), { jobId: 'j', outcome: 'COMPLETED' }, log)).toBe(
      'failed',
    );
    expect(s3.tagsOf('inbound/a.csv', 'v1')).toEqual(ten);
    expect(warnings).toHaveLength(1);
  });

  it('without a port nothing is tagged', async () => {
    const { log } = memoryLog();
    expect(await recordSourceFate(null, ref('v1'), { jobId: 'j', outcome: 'COMPLETED' }, log)).toBe('off');
  });
});
