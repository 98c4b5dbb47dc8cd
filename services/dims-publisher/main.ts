/**
 * On-demand inventory: `npx tsx services/dims-publisher/main.ts` with the stage's environment (the
 * variables of serviceEnvironment, e.g. from the local runner). Prints what it measured and the drift.
 */
import { dimsPublisherFromEnv } from './handler.ts';

const publisher = dimsPublisherFromEnv(process.env);
const summary = await publisher.runOnce(new Date());
for (const m of summary.metrics) {
  const labels = Object.entries(m.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const drift =
    m.driftPercent === null ? '' : ` (was ${m.previous}, ${m.driftPercent > 0 ? '+' : ''}${m.driftPercent}%)`;
  console.log(`${m.name.padEnd(34)} ${labels.padEnd(32)} ${m.value}${drift}`);
}
console.log(
  `snapshot ${summary.snapshot.snapshotId}: ${summary.metrics.length} metrics, ${summary.drift.length} beyond ` +
    `${publisher.deps.definition.tolerancePercent}% drift (previous: ${summary.previousSnapshotId ?? 'none'}); ` +
    'stored as inventory#latest in the state table, InventoryPublished.v1 sent',
);
