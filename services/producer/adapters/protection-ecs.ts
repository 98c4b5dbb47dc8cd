import { NO_PROTECTION, type TaskProtectionPort } from '../protection.ts';

/**
 * The ECS agent's task scale-in protection endpoint: `PUT $ECS_AGENT_URI/task-protection/v1/state`
 * with `{"ProtectionEnabled": true, "ExpiresInMinutes": n}`. The agent calls ECS UpdateTaskProtection
 * with the task role (stacks/Pipeline.ts grants it). It answers 200 with `{"protection": ...}`, or a
 * `failure` / `error` object (with 200 or an error status) when ECS refused.
 */
export function ecsAgentProtection(
  agentUri: string,
  fetchImpl: typeof fetch = fetch,
  timeoutMs = 5_000,
): TaskProtectionPort {
  const url = `${agentUri.replace(/\/+$/, '')}/task-protection/v1/state`;
  return {
    async set(enabled, expiresInMinutes) {
      const body = {
        ProtectionEnabled: enabled,
        ...(enabled && expiresInMinutes !== undefined ? { ExpiresInMinutes: expiresInMinutes } : {}),
      };
      const res = await fetchImpl(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      let parsed: Record<string, { Reason?: string; Message?: string; Code?: string }> = {};
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        // Not JSON: judged by the status below.
      }
      const refusal = parsed.failure ?? parsed.error;
      if (!res.ok || refusal) {
        const why = refusal?.Reason ?? refusal?.Message ?? refusal?.Code ?? text.slice(0, 200);
        throw new Error(`task protection ${enabled ? 'on' : 'off'} refused (HTTP ${res.status}): ${why}`);
      }
    },
  };
}

/** The ECS agent endpoint when running on ECS (it sets ECS_AGENT_URI), else nothing to protect. */
export function protectionFromEnv(env: NodeJS.ProcessEnv): TaskProtectionPort {
  return env.ECS_AGENT_URI ? ecsAgentProtection(env.ECS_AGENT_URI) : NO_PROTECTION;
}
