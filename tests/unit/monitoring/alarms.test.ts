import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  alarmByName,
  alarmDefinitions,
  alarmMetrics,
  runbookUrl,
  severityFromAlarmName,
} from '../../../monitoring/alarms.ts';
import { metricDef } from '../../../monitoring/metrics.ts';
import { QUEUES, resourceNames, TOPICS } from '../../../topology/topology.ts';

const runbooks = readFileSync(new URL('../../../docs/runbooks.md', import.meta.url), 'utf8');
const anchors = new Set([...runbooks.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));

describe('alarm definitions', () => {
  const stage = 'unit';
  const defs = alarmDefinitions(stage);

  it('have unique names and ids, each encoding its severity', () => {
    // Prepare / Act
    const names = defs.map((d) => d.name);
    // Assess
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(defs.map((d) => d.id)).size).toBe(defs.length);
    for (const d of defs) {
      expect(d.name).toBe(`rowstream-${stage}-${d.severity}-${d.id}`);
      expect(severityFromAlarmName(stage, d.name)).toBe(d.severity);
      expect(alarmByName(stage, d.name)).toEqual(d);
    }
  });

  it('each link to a runbook section that exists in docs/runbooks.md', () => {
    expect(anchors.size).toBeGreaterThan(5);
    for (const d of defs) {
      expect(anchors, `${d.id} -> #${d.runbook}`).toContain(d.runbook);
      expect(d.description).toContain(
        runbookUrl(d.runbook, { kind: 'bucket', bucket: resourceNames(stage).bucket }),
      );
    }
  });

  it('link runbooks where they resolve, never to a guessed public repository', () => {
    const bucket = resourceNames(stage).bucket;
    expect(runbookUrl('job-stalled', { kind: 'url', url: 'https://wiki.example.com/rowstream#old' })).toBe(
      'https://wiki.example.com/rowstream#job-stalled',
    );
    expect(runbookUrl('job-stalled', { kind: 'bucket', bucket, endpoint: 'http://127.0.0.1:4566/' })).toBe(
      `http://127.0.0.1:4566/${bucket}/runbooks/runbooks.md#job-stalled`,
    );
    expect(runbookUrl('job-stalled', { kind: 'bucket', bucket, region: 'eu-west-1' })).toBe(
      `https://s3.console.aws.amazon.com/s3/object/${bucket}?region=eu-west-1&bucketType=general&prefix=runbooks/runbooks.md`,
    );
    expect(defs.every((d) => !d.description.includes('github.com'))).toBe(true);
  });

  it('each publish to the topic of their severity, which exists in the topology', () => {
    const topics = TOPICS.map((t) => t.name);
    for (const d of defs) {
      expect(topics).toContain(d.topic);
      expect(d.topic).toBe(d.severity);
    }
  });

  it('read only catalog metrics, with the dimensions the catalog declares for their service', () => {
    for (const d of defs) {
      for (const m of alarmMetrics(d)) {
        if (m.namespace !== 'Rowstream') continue;
        const def = metricDef(m.metricName);
        expect(def, `${d.id}: ${m.metricName} is not in monitoring/metrics.ts`).toBeDefined();
        expect(m.dimensions).toEqual({ Service: def?.service, Stage: stage });
        // An alarm cannot aggregate over a per-job dimension: it would need a fixed JobId.
        expect(def?.extraDimensions ?? []).toEqual([]);
      }
    }
  });

  it('watch every DLQ of the topology, by its physical name', () => {
    const names = resourceNames(stage);
    const expected = QUEUES.map((q) =>
      q.maxReceiveCount === null ? names.queues[q.name].name : names.queues[q.name].dlqName,
    );
    const watched = defs
      .flatMap(alarmMetrics)
      .filter((m) => m.namespace === 'AWS/SQS' && m.metricName === 'ApproximateNumberOfMessagesVisible')
      .map((m) => m.dimensions.QueueName);
    expect(watched.sort()).toEqual([...expected].sort());
  });

  it('page on producer errors, rejects, budget, stalls, planner failures and old queue messages, with their thresholds', () => {
    const byId = new Map(defs.map((d) => [d.id, d]));
    const rate = byId.get('producer-error-rate');
    expect(rate?.source.kind).toBe('math');
    expect(rate?.threshold).toBe(5);
    expect(byId.get('rows-rejected')?.severity).toBe('warning');
    expect(byId.get('budget-80')).toMatchObject({ severity: 'warning', threshold: 80 });
    expect(byId.get('budget-100')).toMatchObject({ severity: 'critical', threshold: 100 });
    expect(byId.get('job-stalled')?.severity).toBe('critical');
    expect(byId.get('planner-failures')).toBeDefined();
    const ages = defs
      .flatMap(alarmMetrics)
      .filter((m) => m.metricName === 'ApproximateAgeOfOldestMessage')
      .map((m) => m.dimensions.QueueName);
    expect(ages).toEqual([
      resourceNames(stage).queues.planner.name,
      resourceNames(stage).queues.producer.name,
    ]);
  });

  it('math expressions only use ids they define', () => {
    for (const d of defs) {
      if (d.source.kind !== 'math') continue;
      const used = new Set(
        [...d.source.expression.matchAll(/\b([a-z][a-zA-Z0-9_]*)\b/g)].map((m) => m[1] as string),
      );
      for (const id of Object.keys(d.source.metrics)) expect(used).toContain(id);
      for (const id of used) expect(Object.keys(d.source.metrics), `${d.id}: ${id}`).toContain(id);
    }
  });

  it('honour threshold options', () => {
    const defs2 = alarmDefinitions(stage, { errorRatePercent: 2, producerQueueAgeSeconds: 7200 });
    expect(defs2.find((d) => d.id === 'producer-error-rate')?.threshold).toBe(2);
    expect(defs2.find((d) => d.id === 'producer-queue-age')?.threshold).toBe(7200);
  });
});

describe('severityFromAlarmName', () => {
  it('reads the severity of a name that follows the convention, and nothing else', () => {
    expect(severityFromAlarmName('prod', 'rowstream-prod-warning-something-new')).toBe('warning');
    expect(severityFromAlarmName('prod', 'rowstream-dev-critical-x')).toBeNull();
    expect(severityFromAlarmName('prod', 'rowstream-prod-urgent-x')).toBeNull();
    expect(severityFromAlarmName('my-stage', 'rowstream-my-stage-info-x')).toBe('info');
  });
});
