import { z } from 'zod';

/**
 * AWS's own events that rowstream consumes. Only the fields rowstream reads are required; the rest
 * of AWS's shape passes through untouched.
 */
export const AlarmStateValue = z.enum(['OK', 'ALARM', 'INSUFFICIENT_DATA']);
export type AlarmStateValue = z.infer<typeof AlarmStateValue>;

const AlarmState = z.looseObject({
  value: AlarmStateValue,
  reason: z.string().default(''),
  reasonData: z.string().optional(),
  timestamp: z.string(),
});

/** detail of `CloudWatch Alarm State Change` (source `aws.cloudwatch`). */
export const AlarmStateChange = z.looseObject({
  alarmName: z.string().min(1),
  state: AlarmState,
  previousState: AlarmState.optional(),
  configuration: z
    .looseObject({
      description: z.string().optional(),
      metrics: z.array(z.unknown()).optional(),
    })
    .optional(),
});
export type AlarmStateChange = z.infer<typeof AlarmStateChange>;

export const ALARM_STATE_CHANGE = {
  source: 'aws.cloudwatch',
  detailType: 'CloudWatch Alarm State Change',
} as const;
