import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * Whether a DynamoDB write failed its condition (the expected outcome of a lost race, not an outage).
 * By name as well as by class: the document client and a second copy of the SDK throw other instances.
 */
export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException'
  );
}
