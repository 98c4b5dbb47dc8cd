import {
  type CostExplorerClient,
  type Expression,
  GetCostAndUsageCommand,
} from '@aws-sdk/client-cost-explorer';
import type { CostExplorerPort, MonthToDate } from '../ports.ts';

/**
 * {@link CostExplorerPort} over GetCostAndUsage (MONTHLY, UnblendedCost), filtered by cost allocation
 * tags. Emulators without Cost Explorer answer with an error or no results: that is reported as
 * unavailable (with the reason), never as a cost of 0.
 */
export function awsCostExplorer(client: CostExplorerClient): CostExplorerPort {
  return {
    async monthToDate({ start, end, tags }): Promise<MonthToDate> {
      const filters: Expression[] = Object.entries(tags).map(([Key, value]) => ({
        Tags: { Key, Values: [value], MatchOptions: ['EQUALS'] },
      }));
      const Filter = filters.length === 0 ? undefined : filters.length === 1 ? filters[0] : { And: filters };
      let amount = 0;
      let estimated = false;
      let results = 0;
      let token: string | undefined;
      try {
        do {
          const out = await client.send(
            new GetCostAndUsageCommand({
              TimePeriod: { Start: start, End: end },
              Granularity: 'MONTHLY',
              Metrics: ['UnblendedCost'],
              Filter,
              NextPageToken: token,
            }),
          );
          for (const r of out.ResultsByTime ?? []) {
            const value = r.Total?.UnblendedCost?.Amount;
            if (value === undefined) continue;
            amount += Number(value);
            estimated ||= r.Estimated ?? false;
            results++;
          }
          token = out.NextPageToken;
        } while (token);
      } catch (error) {
        const e = error as { name?: string; message?: string };
        return {
          available: false,
          reason: `GetCostAndUsage failed: ${e.name ?? 'Error'}: ${e.message ?? String(error)}`,
        };
      }
      if (results === 0)
        return {
          available: false,
          reason: 'GetCostAndUsage returned no results (no Cost Explorer data here)',
        };
      if (!Number.isFinite(amount))
        return { available: false, reason: 'GetCostAndUsage returned a non-numeric amount' };
      return { available: true, amountUsd: amount, estimated };
    },
  };
}
