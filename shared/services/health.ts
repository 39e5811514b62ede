/** Checks every dependency and reports `ok`/`error` with its latency. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
}

export interface HealthReport {
  status: 'ok' | 'error';
  dependencies: Record<string, { status: 'ok' | 'error'; latencyMs: number; error?: string }>;
}

const TIMEOUT_MS = 5000;

export async function checkHealth(checks: DependencyCheck[]): Promise<HealthReport> {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      const started = performance.now();
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref()),
        ]);
        return [name, { status: 'ok' as const, latencyMs: Math.round(performance.now() - started) }] as const;
      } catch (e) {
        const error = (e as Error).message?.split('\n')[0]?.slice(0, 200) ?? 'failed';
        return [name, { status: 'error' as const, latencyMs: Math.round(performance.now() - started), error }] as const;
      }
    }),
  );
  const dependencies = Object.fromEntries(results);
  const status = results.every(([, r]) => r.status === 'ok') ? 'ok' : 'error';
  return { status, dependencies };
}
