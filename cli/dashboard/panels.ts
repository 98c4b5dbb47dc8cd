import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { alarmDefinitions, type RunbookLocation } from '../../monitoring/alarms.ts';
import { type AlarmView, alarmViews, describeStageAlarms, valueVsThresholdText } from '../alarms.ts';

/** What the CloudWatch dashboard shows beyond the jobs and the producer's metrics. */
export interface Panels {
  readonly alarms: readonly (AlarmView & { readonly valueText: string })[];
  readonly inventory: {
    readonly takenAt: string;
    readonly metrics: readonly {
      name: string;
      labels: Record<string, string>;
      value: number;
      unit: string;
    }[];
  } | null;
}

/**
 * The alarm states (DescribeAlarms + the definitions' runbooks) and the latest inventory snapshot
 * (`inventory#latest` in the state table, written by the dims-publisher). Each part fails alone: the
 * error goes into the page's error line, the rest still shows.
 */
export function panelsSource(o: {
  readonly stage: string;
  readonly cloudwatch: CloudWatchClient;
  readonly doc: DynamoDBDocumentClient;
  readonly stateTable: string;
  readonly runbooks: RunbookLocation;
}): () => Promise<Panels & { errors: string[] }> {
  const defs = alarmDefinitions(o.stage);
  return async () => {
    const errors: string[] = [];
    let alarms: Panels['alarms'] = [];
    let inventory: Panels['inventory'] = null;
    try {
      alarms = alarmViews(await describeStageAlarms(o.cloudwatch, o.stage), defs, o.runbooks).map((v) => ({
        ...v,
        valueText: valueVsThresholdText(v),
      }));
    } catch (error) {
      errors.push(`alarms: ${(error as Error).message}`);
    }
    try {
      const out = await o.doc.send(
        new GetCommand({ TableName: o.stateTable, Key: { pk: 'inventory#latest' } }),
      );
      if (out.Item) inventory = { takenAt: String(out.Item.takenAt), metrics: out.Item.metrics ?? [] };
    } catch (error) {
      errors.push(`inventory: ${(error as Error).message}`);
    }
    return { alarms, inventory, errors };
  };
}
