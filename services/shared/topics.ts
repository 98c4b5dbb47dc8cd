/**
 * Which Kafka topics a job may write to (ROWSTREAM_ALLOWED_TOPICS), read by the planner (a refused
 * per-object override becomes JobRejected BAD_OPTIONS) and by the producer (defence in depth: it
 * refuses a JobStarted naming any other topic). Kafka's internal topics (`__consumer_offsets`,
 * `__transaction_state`, ...) are never allowed.
 */

/** `any`: every legal name but Kafka's internal ones (the local stage); `list`: these names only. */
export type TopicPolicy =
  | { readonly kind: 'any' }
  | { readonly kind: 'list'; readonly topics: readonly string[] };

/**
 * Parses ROWSTREAM_ALLOWED_TOPICS: `*` = any topic but `__*`; a comma-separated list; unset or empty =
 * only the default topic.
 */
export function parseTopicPolicy(raw: string | undefined, defaultTopic: string): TopicPolicy {
  const v = raw?.trim() ?? '';
  if (v === '') return { kind: 'list', topics: [defaultTopic] };
  if (v === '*') return { kind: 'any' };
  const topics = v
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return { kind: 'list', topics: topics.includes(defaultTopic) ? topics : [defaultTopic, ...topics] };
}

/** Why `topic` may not be written under `policy`, or null when it may. */
export function topicRefusal(topic: string, policy: TopicPolicy): string | null {
  if (topic.startsWith('__')) return 'Kafka internal topics (names starting with __) are never allowed';
  if (policy.kind === 'any') return null;
  if (policy.topics.includes(topic)) return null;
  return 'not in ROWSTREAM_ALLOWED_TOPICS (the topics this stage may write to)';
}
