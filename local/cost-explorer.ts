import type { ResultByTime } from '@aws-sdk/client-cost-explorer';

/**
 * Queues Cost Explorer answers on moto, which tracks no cost and otherwise answers
 * GetCostAndUsage with nothing. Each queued result answers the next GetCostAndUsage whose
 * parameters moto has not seen yet; a repeated identical request gets the same result again.
 *
 * @example
 * await seedCostExplorer('http://127.0.0.1:4566', [
 *   { ResultsByTime: [{ TimePeriod: { Start: '2026-11-01', End: '2026-11-25' },
 *       Total: { UnblendedCost: { Amount: '12.34', Unit: 'USD' } }, Groups: [], Estimated: true }] },
 * ]);
 */
export async function seedCostExplorer(
  endpoint: string,
  results: readonly { readonly ResultsByTime: readonly ResultByTime[] }[],
  accountId = '123456789012',
): Promise<void> {
  const url = new URL('/moto-api/static/ce/cost-and-usage-results', endpoint);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ account_id: accountId, results }),
  });
  if (response.status !== 201) {
    throw new Error(
      `seeding Cost Explorer on ${url.href} failed: HTTP ${response.status} ${await response.text()}`,
    );
  }
}
