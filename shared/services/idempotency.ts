/**
 * `Idempotency-Key` for HTTP routes that start work (renew, open an incident): the first
 * request with a key runs and its answer is kept (until the key expires); the same
 * request again gets that answer, a different one with the same key is refused
 * (IDEMPOTENCY_KEY_REUSED). Only answers are kept: a request that fails releases its
 * key, so a retry runs again. A holder that died (a crashed host) loses the key after a
 * lease. Keys are namespaced per route family (`scope`), so one key never collides
 * across them.
 */
import { createHash } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError, describeError } from '../errors';
import type { Clock, Logger, Versioned } from '../ports';
import type { IdempotencyRecord, IdempotencyStore } from './renewal/ports';

/** How long a key is remembered. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3600_000;
/** How long a concurrent request with the same key waits for the first one's answer. */
const WAIT_MS = 250;
const WAITS = 40;

export type Answer = { status: number; body: Record<string, unknown> };

export interface IdempotencyDeps {
  store: IdempotencyStore;
  clock: Clock;
  log: Logger;
  /** After this long without an answer the first request counts as dead. */
  leaseMs: number;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `run` once per (scope, key, request); the answer is replayed for the same request. */
export async function oncePerKey(
  deps: IdempotencyDeps,
  scope: string,
  key: string,
  request: unknown,
  run: () => Promise<Answer>,
): Promise<Answer & { replayed: boolean }> {
  const { store, clock } = deps;
  const id = sha256(`${scope}\n${key}`);
  const fingerprint = sha256(JSON.stringify(request));
  for (let tries = 0; ; tries++) {
    const now = (await clock.now()).getTime();
    const fresh: IdempotencyRecord = {
      id,
      fingerprint,
      expiresAt: new Date(now + IDEMPOTENCY_KEY_TTL_MS).toISOString(),
      heldUntil: new Date(now + deps.leaseMs).toISOString(),
    };
    const found = await store.read(id);
    let held: Versioned<IdempotencyRecord> | undefined;
    if (found && Date.parse(found.doc.expiresAt) > now) {
      const doc = found.doc;
      if (doc.fingerprint !== fingerprint) {
        throw new KeyturnError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request; use a new key', {});
      }
      if (doc.answer) return { ...doc.answer, replayed: true };
      const abandoned = doc.heldUntil !== undefined && Date.parse(doc.heldUntil) <= now;
      if (abandoned) held = await take(() => store.replace(fresh, found.etag));
      else if (tries >= WAITS) throw new KeyturnError('IDEMPOTENCY_KEY_IN_PROGRESS', 'A request with this Idempotency-Key is still running; retry shortly', {});
      else {
        await sleep(WAIT_MS);
        continue;
      }
    } else {
      held = await take(() => (found ? store.replace(fresh, found.etag) : store.create(fresh)));
    }
    if (!held) continue; // another request took it first: read what it holds
    return { ...(await runHolding(deps, held, run)), replayed: false };
  }
}

async function take(write: () => Promise<Versioned<IdempotencyRecord>>): Promise<Versioned<IdempotencyRecord> | undefined> {
  try {
    return await write();
  } catch (e) {
    if (e instanceof ConcurrencyConflict) return undefined;
    throw e;
  }
}

async function runHolding(deps: IdempotencyDeps, held: Versioned<IdempotencyRecord>, run: () => Promise<Answer>): Promise<Answer> {
  const { store } = deps;
  let answer: Answer;
  try {
    answer = await run();
  } catch (e) {
    // Not remembered: the key is free again for a retry (expired at once).
    await store.replace({ ...held.doc, expiresAt: new Date(0).toISOString() }, held.etag).catch((release: unknown) => {
      deps.log.warn('Could not release an Idempotency-Key after a failed request; it frees itself after a lease', { error: describeError(release) });
    });
    throw e;
  }
  try {
    await store.replace({ ...held.doc, answer }, held.etag);
  } catch (e) {
    // The answer stands; only its replay is lost.
    deps.log.warn('Could not remember the answer of an Idempotency-Key', { error: describeError(e) });
  }
  return answer;
}
