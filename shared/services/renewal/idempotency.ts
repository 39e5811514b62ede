/**
 * `Idempotency-Key` for HTTP renew: the generic once-per-key store
 * (`services/idempotency.ts`) under renewal's scope and lease. A retry with the key
 * renews from the same version at worst: `fromVersion` makes that safe.
 */
import { type Answer, IDEMPOTENCY_KEY_TTL_MS, oncePerKey as once } from '../idempotency';
import type { RenewalContext } from './context';

export { IDEMPOTENCY_KEY_TTL_MS, type Answer };

/** Runs `run` once per (key, request); the answer is replayed for the same request. */
export async function oncePerKey(c: RenewalContext, key: string, request: unknown, run: () => Promise<Answer>): Promise<Answer & { replayed: boolean }> {
  const { idempotency: store, clock, settings, log } = c.deps;
  if (!store) throw new Error('Idempotency-Key needs deps.idempotency');
  return once({ store, clock, log, leaseMs: settings.leaseSeconds * 1000 }, 'renew', key, request, run);
}
