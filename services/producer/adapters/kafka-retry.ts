/**
 * How the producer's Kafka clients retry, and the error text their retry and error decisions read.
 * @platformatic/kafka waits a flat 1 s before every retry; two places need less (see each function).
 */

/**
 * Text of an error and everything nested in it (AggregateError.errors, cause, the library's per-response
 * errors with their apiId and code), for matching Kafka error names such as CONCURRENT_TRANSACTIONS.
 */
export function errorText(e: unknown): string {
  const parts: string[] = [];
  const walk = (x: unknown, depth: number) => {
    if (!x || depth > 4) return;
    const err = x as { message?: string; apiId?: string; code?: string; errors?: unknown[]; cause?: unknown };
    parts.push(`${err.apiId ?? ''} ${err.code ?? ''} ${err.message ?? String(x)}`);
    for (const inner of err.errors ?? []) walk(inner, depth + 1);
    walk(err.cause, depth + 1);
  };
  walk(e, 0);
  return parts.join(' | ');
}

/**
 * Retry delay of the job's first look at its topic (placement metadata, topic limits): 100 ms doubling
 * to 1 s, the Java client's retry.backoff.ms / retry.backoff.max.ms (KIP-580). A job's topic is often new
 * on the local stage (`rowstream drop --topic T`): the Metadata request that auto-creates it is answered
 * LEADER_NOT_AVAILABLE until the controller has elected a leader (milliseconds on one broker), and
 * DescribeConfigs of a topic not created yet answers UNKNOWN_TOPIC_OR_PARTITION. With the library's flat
 * 1 s each of the two cost a full second: a 1M-row job on a new topic spent 2.1 s between its claim
 * and its first record (measured in bench:producer, docs/producer.md "Speed round 5").
 */
export function startupRetryDelay(_client: unknown, _operationId: string, attempt: number): number {
  return Math.min(1000, 100 * 2 ** Math.max(0, attempt - 1));
}

/**
 * The library's retry delay (its default: 1 s for everything). Right after a commit the coordinator
 * answers AddPartitionsToTxn (and an early EndTxn) with CONCURRENT_TRANSACTIONS until it has written the
 * previous transaction's markers, which takes milliseconds: the Java client retries those after 20 ms.
 * A 1 s wait there cost a quarter of a second per transaction on average (5 s of a 37 s run at 1M
 * rows, measured). Everything else keeps the library's 1 s.
 */
export function transactionRetryDelay(
  _client: unknown,
  operationId: string,
  attempt: number,
  _retries: number,
  error: unknown,
): number {
  const concurrent = /CONCURRENT_TRANSACTIONS/i.test(errorText(error));
  if (!concurrent || !/addPartitionsToTransaction|endTransaction/.test(operationId)) return 1000;
  return attempt <= 1 ? 20 : attempt === 2 ? 100 : 1000;
}
