import { describeError, errorFacts } from '../errors';

/** Checks every dependency and reports `ok`/`error` with its latency. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
  /** False: reported, but never fails the whole report (a customer's vault, where the app has no role). Default true. */
  required?: boolean;
}

export interface HealthReport {
  status: 'ok' | 'error';
  dependencies: Record<string, { status: 'ok' | 'error'; latencyMs: number; error?: string; required?: false }>;
}

const TIMEOUT_MS = 5000;

export async function checkHealth(checks: DependencyCheck[], log?: (message: string) => void): Promise<HealthReport> {
  const results = await Promise.all(
    checks.map(async ({ name, check, required }) => {
      const started = performance.now();
      const optional = required === false ? { required: false as const } : {};
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref()),
        ]);
        return [name, { status: 'ok' as const, latencyMs: Math.round(performance.now() - started), ...optional }] as const;
      } catch (e) {
        // Anonymous endpoint: a classification only; the details go to the log.
        const error = classify(e);
        log?.(`Health check '${name}' failed: ${describeError(e)}`);
        return [name, { status: 'error' as const, latencyMs: Math.round(performance.now() - started), error, ...optional }] as const;
      }
    }),
  );
  const dependencies = Object.fromEntries(results);
  const status = results.every(([, r]) => r.status === 'ok' || r.required === false) ? 'ok' : 'error';
  return { status, dependencies };
}

/** What an anonymous caller may learn about a failure: its kind, never its text. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'REQUEST_SEND_ERROR']);

function classify(e: unknown): string {
  const facts = errorFacts(e); // the one reader of SDK error shapes
  if (facts.statusCode !== undefined) return `status ${facts.statusCode}`;
  if (facts.code !== undefined && UNREACHABLE.has(facts.code)) return 'unreachable';
  if (e instanceof Error && e.message.startsWith('no answer within')) return 'timeout';
  return 'failed';
}
