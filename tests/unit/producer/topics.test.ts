import { describe, expect, it } from 'vitest';
import { runJob } from '../../../services/producer/core.ts';
import { parseTopicPolicy } from '../../../services/shared/topics.ts';
import { csvOf, jobFor, makeDeps, settings } from './fakes.ts';

describe('producer topic check (defence in depth behind the planner)', () => {
  it('fails a job naming a topic outside the allow-list, or a Kafka internal one, before writing a row', async () => {
    // Prepare
    const csv = csvOf(3);
    const policy = parseTopicPolicy('orders', 'rowstream.rows');
    for (const [topic, why] of [
      ['payments', /not in ROWSTREAM_ALLOWED_TOPICS/],
      ['__consumer_offsets', /internal topics/],
    ] as const) {
      const { deps, kafka, jobs, bus } = makeDeps(csv);
      // Act
      const outcome = await runJob(jobFor(csv, { topic }), deps, settings({ topicPolicy: policy }));
      // Assess
      expect(outcome.kind).toBe('failed');
      expect(kafka.log).toEqual([]);
      expect(jobs.finished?.status).toBe('FAILED');
      expect(JSON.stringify(bus.entries)).toMatch(why);
    }
  });

  it('runs a job on an allowed topic, and with * any topic but __*', async () => {
    const csv = csvOf(3);
    for (const [raw, topic] of [
      ['orders', 'orders'],
      ['orders', 'rowstream.rows'],
      ['*', 'anything'],
    ] as const) {
      const { deps, kafka } = makeDeps(csv);
      const outcome = await runJob(
        jobFor(csv, { topic }),
        deps,
        settings({ topicPolicy: parseTopicPolicy(raw, 'rowstream.rows') }),
      );
      expect(outcome).toMatchObject({ kind: 'completed', rows: 3 });
      expect(kafka.rows()).toEqual([1, 2, 3]);
    }
  });
});
