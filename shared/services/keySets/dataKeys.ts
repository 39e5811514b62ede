/**
 * Unwrapped data keys, in memory only: one Key Vault unwrap per data key per process
 * per TTL (single-flight: concurrent readers of a cold key share one unwrap), and the
 * blocks of encryptions this process reserved on each key's document.
 */
import { createHash } from 'node:crypto';
import { type DataKey, MAX_USES_PER_KEY, dataKeyDocId } from '../../domain/keySet';
import { ConcurrencyConflict } from '../../errors';
import type { KeyRef, VaultKeys } from '../../ports';
import type { KeySetStore } from './ports';

export const WRAP_ALG = 'RSA-OAEP-256' as const;

/** Where a data key's wrapping lives: the KEK version it was wrapped under. */
export interface WrappedKeyRef {
  kek: KeyRef & { version: string };
  wrapped: string;
}

export class DataKeyCache {
  private readonly entries = new Map<string, { value: Promise<Uint8Array>; expiresAt: number }>();
  /** Key Vault unwraps this process made (the bench and tests read it). */
  unwraps = 0;

  constructor(
    private readonly keys: Pick<VaultKeys, 'unwrap'>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    /** Told of each Key Vault unwrap (ids only), for logs. */
    private readonly onUnwrap: (setUid: string, keyId: string) => void = () => undefined,
  ) {}

  /** The plaintext data key; the entry is per wrapping, so a rewrap or import never serves a stale key. */
  get(setUid: string, key: DataKey & WrappedKeyRef): Promise<Uint8Array> {
    const id = `${setUid}/${key.keyId}/${createHash('sha256').update(key.wrapped).digest('base64url')}`;
    const t = this.now();
    const hit = this.entries.get(id);
    if (hit && hit.expiresAt > t) return hit.value;
    this.unwraps++;
    this.onUnwrap(setUid, key.keyId);
    const value = this.keys.unwrap(key.kek, WRAP_ALG, Buffer.from(key.wrapped, 'base64url'));
    const entry = { value, expiresAt: t + this.ttlMs };
    this.entries.set(id, entry);
    // A failed unwrap is not cached: the next reader tries again.
    value.catch(() => {
      if (this.entries.get(id) === entry) this.entries.delete(id);
    });
    this.sweep(t);
    return value;
  }

  forgetSet(setUid: string): void {
    for (const id of this.entries.keys()) if (id.startsWith(`${setUid}/`)) this.entries.delete(id);
  }

  private sweep(t: number): void {
    if (this.entries.size < 1024) return;
    for (const [id, e] of this.entries) if (e.expiresAt <= t) this.entries.delete(id);
  }
}

/** Thrown when the primary key has no uses left: the caller adds a key and tries again. */
export class KeyExhausted extends Error {
  constructor(readonly keyId: string) {
    super(`Data key '${keyId}' has used its encryptions`);
  }
}

/**
 * Encryptions per data key, counted across processes: each process reserves a block of
 * uses on the key's document (ETag-guarded) and spends it locally. A key whose next
 * block would pass the limit encrypts no more.
 */
export class UseReservations {
  private readonly blocks = new Map<string, { next: number; end: number }>();
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Pick<KeySetStore, 'readKey' | 'replaceKey'>,
    private readonly blockSize = 1024,
    private readonly maxUses = MAX_USES_PER_KEY,
  ) {}

  /** One encryption with the key; KeyExhausted when the key has reached its limit. */
  async take(setUid: string, setId: string, keyId: string): Promise<void> {
    const id = `${setUid}/${keyId}`;
    for (;;) {
      const block = this.blocks.get(id);
      if (block && block.next < block.end) {
        block.next++;
        return;
      }
      // One reservation in flight per key; others wait for it and take from the new block.
      let p = this.pending.get(id);
      if (!p) {
        p = this.reserve(id, setId, keyId).finally(() => this.pending.delete(id));
        this.pending.set(id, p);
      }
      await p;
    }
  }

  private async reserve(id: string, setId: string, keyId: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const stored = await this.store.readKey(setId, keyId);
      if (!stored) throw new KeyExhausted(keyId);
      const from = stored.doc.reservedUses;
      if (stored.doc.state === 'retired' || from + this.blockSize > this.maxUses) throw new KeyExhausted(keyId);
      try {
        await this.store.replaceKey({ ...stored.doc, id: dataKeyDocId(keyId), reservedUses: from + this.blockSize }, stored.etag);
        this.blocks.set(id, { next: from, end: from + this.blockSize });
        return;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    throw new ConcurrencyConflict('changed', dataKeyDocId(keyId));
  }
}
