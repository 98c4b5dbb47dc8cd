/**
 * `npm run bench:eta [-- --rows 2000000 --runs 5 --kafka real]`
 *
 * How far is the producer's ETA from the real finish at 10%, 50% and 90% of a job? (Goal: within 10%.)
 * Jobs run one after the other in this process through the in-process harness (bench/lib/producer-inproc.ts:
 * the real core, the real Kafka adapter and broker, the file from memory, metrics on as main.ts builds
 * them). The ETA is read where the core publishes it: the EtaSeconds metric recorded at every commit
 * point, the same value (same computation, same moment) the job record's checkpoint gets. The first
 * run is the process's first job (cold JIT), the others are warm, as in a producer that has run before.
 *
 * Per mark: error = predicted finish - actual finish (positive: the ETA said later than it was), as
 * % of the whole run and as % of the time that was really left. The median over runs and the worst run
 * are printed, with the verdict on "% of the whole run" (the goal's reading in docs/producer.md).
 */
import { join } from 'node:path';
import { Command } from 'commander';
import type { MetricsPort } from '../services/shared/metrics.ts';
import { REPO } from '../testkit/producer.ts';
import { producerMetrics, runInproc } from './lib/producer-inproc.ts';
import { median, round } from './lib/stats.ts';

const opts = new Command('bench:eta')
  .option('--rows <n>', 'rows per job', '2000000')
  .option('--runs <n>', 'jobs, one after the other', '5')
  .option('--kafka <kind>', 'real (the local broker) or fake', 'real')
  .parse()
  .opts<{ rows: string; runs: string; kafka: string }>();
const rows = Number(opts.rows);
const runs = Number(opts.runs);
const kafka = opts.kafka === 'fake' ? 'fake' : 'real';
const MARKS = [0.1, 0.5, 0.9] as const;
const GOAL_PERCENT = 10;

interface CommitPoint {
  t: number;
  percent: number;
  eta: number | null;
}

/** Forwards to the real metrics and keeps, per commit point, the progress and the ETA the core reported. */
function tap(inner: MetricsPort, points: CommitPoint[]): MetricsPort {
  return {
    record(name, value, unit, options) {
      inner.record(name, value, unit, options);
      // afterCommit records ProgressPercent, then EtaSeconds when there is a rate (not at the first commit).
      if (name === 'ProgressPercent') points.push({ t: Date.now(), percent: value, eta: null });
      else if (name === 'EtaSeconds') {
        const last = points.at(-1);
        if (last) last.eta = value;
      }
    },
    flush: () => inner.flush(),
  };
}

interface MarkResult {
  at: number;
  elapsedS: number;
  predictedLeftS: number;
  actualLeftS: number;
  errorPercentOfTotal: number;
  errorPercentOfRemaining: number;
}

const all: { run: number; seconds: number; rowsPerSecond: number; deciles: number[]; marks: MarkResult[] }[] =
  [];
const emfPath = join(REPO, '.local', 'bench', `emf-eta-${process.pid}.log`);
const metrics = producerMetrics(emfPath);
console.log(`[eta] ${runs} jobs of ${rows.toLocaleString('en-US')} rows, ${kafka} Kafka, metrics on`);
for (let run = 1; run <= runs; run++) {
  const points: CommitPoint[] = [];
  const r = await runInproc({ rows, kafka, metrics: tap(metrics, points) });
  if (r.outcome.kind !== 'completed') throw new Error(`run ${run}: ${JSON.stringify(r.outcome)}`);
  // The finish is the terminal write (COMPLETED in the job record), not the producer's close after it.
  const finish = r.completedAt ?? r.finishedAt;
  const total = finish - r.startedAt;
  const marks = MARKS.flatMap((at): MarkResult[] => {
    const p = points.find((x) => x.percent >= at * 100 - 1e-9 && x.eta !== null);
    if (!p || p.eta === null) return [];
    const predicted = p.t + p.eta * 1000;
    const err = predicted - finish;
    return [
      {
        at,
        elapsedS: round((p.t - r.startedAt) / 1000, 2),
        predictedLeftS: round(p.eta, 2),
        actualLeftS: round((finish - p.t) / 1000, 2),
        errorPercentOfTotal: round((err / total) * 100),
        errorPercentOfRemaining: round((err / Math.max(1, finish - p.t)) * 100),
      },
    ];
  });
  const deciles = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => {
    const p = points.find((x) => x.percent >= d * 10 - 1e-9);
    return p ? round((p.t - r.startedAt) / 1000, 2) : -1;
  });
  const seconds = total / 1000;
  all.push({ run, seconds, rowsPerSecond: Math.round(rows / seconds), deciles, marks });
  console.log(
    `[eta] run ${run}: ${round(seconds, 2)} s, ${Math.round(rows / seconds).toLocaleString('en-US')} rows/s; 10%..90% reached at ${deciles.join(', ')} s`,
  );
  for (const m of marks) {
    console.log(
      `[eta]   at ${m.at * 100}% (t=${m.elapsedS} s): ETA ${m.predictedLeftS} s, really ${m.actualLeftS} s left -> error ${m.errorPercentOfTotal}% of the run, ${m.errorPercentOfRemaining}% of the remaining time`,
    );
  }
}
await metrics.close();

const verdicts: string[] = [];
const summary = MARKS.map((at) => {
  const ms = all.flatMap((r) => r.marks.filter((m) => m.at === at));
  const ofTotal = ms.map((m) => Math.abs(m.errorPercentOfTotal));
  const ofRemaining = ms.map((m) => Math.abs(m.errorPercentOfRemaining));
  const worst = Math.max(...ofTotal);
  const med = median(ofTotal);
  const verdict =
    worst < GOAL_PERCENT
      ? `met in every run`
      : med < GOAL_PERCENT
        ? `met by the median, missed in ${ofTotal.filter((x) => x >= GOAL_PERCENT).length} of ${ms.length} runs`
        : `missed`;
  verdicts.push(`${at * 100}%: ${verdict}`);
  console.log(
    `[eta] at ${at * 100}%: |error| of the run median ${round(med)}% (worst ${round(worst)}%), of the remaining time median ${round(median(ofRemaining))}% (worst ${round(Math.max(...ofRemaining))}%) -> ${verdict}`,
  );
  return {
    at,
    medianAbsErrorPercentOfTotal: med,
    worstAbsErrorPercentOfTotal: worst,
    medianAbsErrorPercentOfRemaining: median(ofRemaining),
    verdict,
  };
});
console.log(`[eta] goal (within ${GOAL_PERCENT}% of the run): ${verdicts.join('; ')}`);
console.log(`[eta] EMF lines written to ${emfPath}`);
console.log(JSON.stringify({ rows, runs, kafka, summary, runDetails: all }, null, 2));
process.exit(0);
