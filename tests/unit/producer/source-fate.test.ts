import { describe, expect, it } from 'vitest';
import { runJob } from '../../../services/producer/core.ts';
import type { ObjectTagsPort, SourceRef } from '../../../services/shared/source-fate.ts';
import { csvOf, jobFor, makeDeps, settings } from './fakes.ts';

/** Tags per object version; `failing` makes every call throw. */
function fakeTags(failing = false) {
  const byVersion = new Map<string, Record<string, string>>();
  const id = (r: SourceRef) => `${r.bucket}/${r.key}@${r.versionId}`;
  const port: ObjectTagsPort = {
    async get(ref) {
      if (failing) throw new Error('SlowDown');
      return byVersion.get(id(ref)) ?? { team: 'ingest' };
    },
    async put(ref, tags) {
      byVersion.set(id(ref), { ...tags });
    },
  };
  return { port, byVersion };
}

describe('producer: source object fate', () => {
  it('a completed job tags the version it read COMPLETED, keeping the other tags', async () => {
    // Prepare
    const csv = csvOf(10);
    const tags = fakeTags();
    const { deps } = makeDeps(csv, { sourceTags: tags.port });
    // Act
    const outcome = await runJob(jobFor(csv, { versionId: 'v7' }), deps, settings());
    // Assess
    expect(outcome.kind).toBe('completed');
    expect(Object.fromEntries(tags.byVersion)).toEqual({
      'b/inbound/x.csv@v7': { team: 'ingest', 'rowstream-job': 'j-1', 'rowstream-outcome': 'COMPLETED' },
    });
  });

  it('a failed job tags FAILED', async () => {
    // Prepare
    const csv = Buffer.from('id,name\n1,a\n2,b\n3\n4,d\n');
    const tags = fakeTags();
    const { deps } = makeDeps(csv, { sourceTags: tags.port });
    const job = jobFor(csv, {
      versionId: 'v1',
      options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: true },
    });
    // Act
    const outcome = await runJob(job, deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'failed', reason: 'BAD_ROW' });
    expect(tags.byVersion.get('b/inbound/x.csv@v1')?.['rowstream-outcome']).toBe('FAILED');
  });

  it('a failure to tag does not change the outcome', async () => {
    // Prepare
    const csv = csvOf(10);
    const { deps, jobs, bus } = makeDeps(csv, { sourceTags: fakeTags(true).port });
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 10 });
    expect(jobs.finished?.status).toBe('COMPLETED');
    expect(bus.types()).toContain('JobCompleted.v1');
  });
});
