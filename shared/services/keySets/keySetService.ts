/**
 * Encryption key sets: sets, their data keys and items (envelope encryption). Values
 * exist in the clear only inside a call: never logged, stored or put in an error.
 */
import { randomUUID } from 'node:crypto';
import {
  type DataKey,
  type Item,
  type KeySet,
  ciphertextInvalid,
  dataKeyDocId,
  formatCiphertext,
  itemView,
  kekLost,
  keyIdOf,
  keySetUnavailable,
  keySetView,
  ownedKekName,
  parseCiphertext,
  parseKekUrl,
  retireRefusal,
  valueBytes,
} from '../../domain/keySet';
import { newDataKey, open, seal } from '../../domain/keySetCipher';
import { rsaBitsFor } from '../../domain/tenantKeyPolicy';
import { ConcurrencyConflict, KeyturnError, failureKind, notFound } from '../../errors';
import type { Clock, Logger, VaultKeys, Versioned } from '../../ports';
import type { KeyPolicyStore } from '../tenants/ports';
import { type DataKeyCache, KeyExhausted, type UseReservations, WRAP_ALG } from './dataKeys';
import type { KeySetStore } from './ports';

export interface KeySetSettings {
  /** Keyturn's vault, where it creates KEKs. */
  vaultUrl: string;
  kekBits: number;
  /** How long a host keeps a set (its primary) before reading it again. */
  primaryTtlMs: number;
  /** KEK failures must span this long before the set is `unavailable`. */
  unavailableAfterMs: number;
}

export interface KeySetDeps {
  store: KeySetStore;
  keys: VaultKeys;
  policies: KeyPolicyStore;
  clock: Clock;
  log: Logger;
  cache: DataKeyCache;
  uses: UseReservations;
  sets: SetCache;
  settings: KeySetSettings;
  /** The canonical URL of a vault a caller named (allow-listed); 400 naming `field` otherwise. */
  checkedVaultUrl(raw: string, field: string): string;
}

interface CachedSet {
  set: Versioned<KeySet>;
  keys: Map<string, DataKey>;
  readAt: number;
}

/** A host's copy of each set and its keys, for at most the primary TTL (writes here drop it at once). */
export class SetCache {
  private readonly entries = new Map<string, CachedSet>();
  constructor(private readonly now: () => number = Date.now) {}
  get(setId: string, ttlMs: number): CachedSet | undefined {
    const hit = this.entries.get(setId);
    return hit && this.now() - hit.readAt < ttlMs ? hit : undefined;
  }
  put(setId: string, set: Versioned<KeySet>, keys: DataKey[]): CachedSet {
    const entry = { set, keys: new Map(keys.map((k) => [k.keyId, k])), readAt: this.now() };
    this.entries.set(setId, entry);
    return entry;
  }
  /** Whether `entry` was read less than `ttlMs` ago. */
  fresh(entry: CachedSet, ttlMs: number): boolean {
    return this.now() - entry.readAt < ttlMs;
  }
  forget(setId: string): void {
    this.entries.delete(setId);
  }
}

export const DEFAULT_PAGE = 100;

/** A KEK that is gone or refused is the set's dependency failing (not "no such item"): 403 or 503 until the window passes. */
function kekFailure(e: unknown): unknown {
  if (e instanceof KeyturnError && (e.code === 'NOT_FOUND' || e.code === 'CONFLICT')) {
    return Object.assign(new KeyturnError('DEPENDENCY_FAILED', "The key set's KEK could not unwrap a data key; retry later", { ...e.details }), { cause: e });
  }
  return e;
}

export class KeySetService {
  constructor(private readonly deps: KeySetDeps) {}

  // ---------------------------------------------------------------- sets and keys

  /** PUT /api/keysets/{set}: creates the set and its first key; the same PUT again answers the set (`created: false`). */
  async createSet(setId: string, input: { kekUrl?: string }): Promise<{ created: boolean; view: ReturnType<typeof keySetView> }> {
    const { store, clock, log } = this.deps;
    const existing = await store.readSet(setId);
    if (existing) return { created: false, view: await this.sameSet(existing.doc, input) };
    const now = (await clock.now()).toISOString();
    const uid = randomUUID();
    const kek = input.kekUrl ? await this.namedKek(input.kekUrl) : await this.createOwnedKek(setId, uid);
    const first = await this.wrapNewKey(setId, kek, 1, 0, now);
    const set: KeySet = {
      id: 'set', setId, uid, kek, primaryKeyId: first.keyId, primarySince: now, generation: 0, nextKeyNumber: 2,
      keysVersion: 1, state: 'available', createdAt: now, updatedAt: now,
    };
    // The key first: a set document always names a key that exists.
    await store.createKey(first);
    const outcome = await store.createSet(set);
    if (!outcome.created) {
      const winner = await store.readSet(setId);
      if (!winner) throw new ConcurrencyConflict('changed', setId);
      return { created: false, view: await this.sameSet(winner.doc, input) };
    }
    log.info('Key set created', { setId, kek: `${kek.vaultUrl}/keys/${kek.name}/${kek.version}`, owned: kek.owned });
    return { created: true, view: keySetView(outcome.value.doc, [first], {}) };
  }

  private async sameSet(set: KeySet, input: { kekUrl?: string }) {
    if (input.kekUrl) {
      const named = parseKekUrl(input.kekUrl);
      if (set.kek.owned || named.name.toLowerCase() !== set.kek.name.toLowerCase() || this.deps.checkedVaultUrl(named.vaultUrl, 'kekUrl') !== set.kek.vaultUrl) {
        throw new KeyturnError('KEYSET_EXISTS', `Key set '${set.setId}' exists with another KEK`, { setId: set.setId });
      }
    }
    return this.view(set.setId);
  }

  /** A new Keyturn-owned KEK (RSA per the key policy, wrap/unwrap only, no `exp`). */
  async createOwnedKek(setId: string, uid: string): Promise<KeySet['kek']> {
    return this.ownedKekVersion(setId, this.deps.settings.vaultUrl, ownedKekName(setId, uid));
  }

  /**
   * A new version of a Keyturn-owned KEK (a new key, or a rotation of `name`), sized by the
   * key policy at the time: a rotation after the minimum rose yields a larger key, which
   * Key Vault's own rotate (same type and size) would not.
   */
  async ownedKekVersion(setId: string, vaultUrl: string, name: string): Promise<KeySet['kek']> {
    const bits = rsaBitsFor(this.deps.settings.kekBits, await this.deps.policies.current());
    // No `exp`: the JS CryptographyClient refuses an expired key on the client, and data outlives any date.
    const created = await this.deps.keys.create(vaultUrl, name, { kty: 'RSA', size: bits }, {
      keyOps: ['wrapKey', 'unwrapKey'],
      tags: { 'keyturn-keyset': setId },
    });
    const p = created.properties;
    return { vaultUrl, name: p.name, version: p.version, owned: true };
  }

  private async namedKek(kekUrl: string): Promise<KeySet['kek']> {
    const named = parseKekUrl(kekUrl);
    const vaultUrl = this.deps.checkedVaultUrl(named.vaultUrl, 'kekUrl');
    const key = await this.deps.keys.get({ vaultUrl, name: named.name, ...(named.version ? { version: named.version } : {}) });
    if (!key) throw notFound(`KEK '${kekUrl}'`, { field: 'kekUrl' });
    if (!key.properties.keyType?.startsWith('RSA')) throw new KeyturnError('VALIDATION_FAILED', 'kekUrl: the KEK must be an RSA key', { field: 'kekUrl' });
    return { vaultUrl, name: key.properties.name, version: key.properties.version, owned: false };
  }

  /** A fresh data key, wrapped by the KEK; the plaintext is dropped here. */
  private async wrapNewKey(setId: string, kek: KeySet['kek'], n: number, generation: number, now: string): Promise<DataKey> {
    const plain = newDataKey();
    const wrapped = await this.deps.keys.wrap({ vaultUrl: kek.vaultUrl, name: kek.name, version: kek.version }, WRAP_ALG, plain);
    plain.fill(0);
    const keyId = keyIdOf(n);
    return {
      id: dataKeyDocId(keyId), setId, keyId, state: 'active', wrapped: Buffer.from(wrapped).toString('base64url'),
      kek: { vaultUrl: kek.vaultUrl, name: kek.name, version: kek.version }, generation, reservedUses: 0, createdAt: now, updatedAt: now,
    };
  }

  forgetCached(setId: string): void {
    this.deps.sets.forget(setId);
  }

  async readSet(setId: string): Promise<Versioned<KeySet>> {
    const stored = await this.deps.store.readSet(setId);
    if (!stored) throw notFound(`Key set '${setId}'`, { setId });
    return stored;
  }

  async view(setId: string) {
    const { doc } = await this.readSet(setId);
    const [keys, counts] = await Promise.all([this.deps.store.listKeys(setId), this.deps.store.countByKey(setId)]);
    return keySetView(doc, keys.map((k) => k.doc), counts);
  }

  /** POST …/keys: a new primary. From the answer on, this host writes with it; others within the primary TTL. */
  async addKey(setId: string) {
    const { store, clock, log } = this.deps;
    for (let attempt = 0; attempt < 5; attempt++) {
      const { doc: set, etag } = await this.readSet(setId);
      const now = (await clock.now()).toISOString();
      const key = await this.wrapNewKey(setId, set.kek, set.nextKeyNumber, set.generation, now);
      const made = await store.createKey(key);
      if (!made.created) continue; // another add took that number: re-read
      try {
        await store.replaceSet({ ...set, primaryKeyId: key.keyId, primarySince: now, nextKeyNumber: set.nextKeyNumber + 1, keysVersion: set.keysVersion + 1, updatedAt: now }, etag);
      } catch (e) {
        if (e instanceof ConcurrencyConflict) continue;
        throw e;
      }
      this.deps.sets.forget(setId);
      log.info('Key set: key added as primary', { setId, keyId: key.keyId });
      return this.view(setId);
    }
    throw new ConcurrencyConflict('changed', setId);
  }

  /**
   * POST …/keys/{keyId}/retire. Refused while items use the key (KEY_IN_USE) and until
   * every host stopped encrypting with it (KEY_RETIRE_TOO_SOON, `retryAfterSeconds`);
   * `wait` (the playbooks) sleeps that window out once instead.
   */
  async retireKey(setId: string, keyId: string, options: { wait?: boolean } = {}): Promise<ReturnType<typeof keySetView>> {
    const { store, clock } = this.deps;
    const { doc: set, etag } = await this.readSet(setId);
    const key = await store.readKey(setId, keyId);
    if (!key) throw notFound(`Key '${keyId}' of key set '${setId}'`, { setId, keyId });
    if (key.doc.state !== 'retired') {
      const counts = await store.countByKey(setId);
      const now = await clock.now();
      const refusal = retireRefusal(set, key.doc, counts[keyId] ?? 0, now, this.deps.settings.primaryTtlMs);
      if (refusal?.code === 'KEY_RETIRE_TOO_SOON' && options.wait) {
        await new Promise((r) => setTimeout(r, Number(refusal.details.retryAfterSeconds) * 1000));
        return this.retireKey(setId, keyId);
      }
      if (refusal) throw refusal;
      await store.replaceKey({ ...key.doc, state: 'retired', updatedAt: now.toISOString() }, key.etag);
      await store.replaceSet({ ...set, keysVersion: set.keysVersion + 1, updatedAt: now.toISOString() }, etag).catch((e: unknown) => {
        if (!(e instanceof ConcurrencyConflict)) throw e; // exportStale follows the next key change then
      });
      this.deps.sets.forget(setId);
    }
    return this.view(setId);
  }

  // ---------------------------------------------------------------- items

  /** The set and its keys as this host last read them (at most the primary TTL ago). */
  async current(setId: string, fresh = false): Promise<CachedSet> {
    const hit = fresh ? undefined : this.deps.sets.get(setId, this.deps.settings.primaryTtlMs);
    if (hit) return hit;
    const set = await this.readSet(setId);
    const keys = await this.deps.store.listKeys(setId);
    return this.deps.sets.put(setId, set, keys.map((k) => k.doc));
  }

  /** The data key in the clear (cache, single-flight); KEK failures are counted towards `unavailable`. */
  async dataKey(cached: CachedSet, keyId: string): Promise<Uint8Array> {
    const set = cached.set.doc;
    if (set.state === 'unavailable') throw keySetUnavailable(set.setId);
    let key = cached.keys.get(keyId);
    if (!key) {
      const again = await this.current(set.setId, true);
      key = again.keys.get(keyId);
      if (!key) throw ciphertextInvalid({ itemId: undefined, keyId });
    }
    try {
      const plain = await this.deps.cache.get(set.uid, key);
      if (set.kekFailingSince) await this.kekRecovered(set.setId);
      return plain;
    } catch (e) {
      if (e instanceof KeyturnError && (e.code === 'VALIDATION_FAILED' || e.code === 'CONFIG_INVALID')) throw e;
      throw await this.kekFailed(set.setId, e);
    }
  }

  /** Records a failed unwrap; the set turns `unavailable` once failures span the window. */
  private async kekFailed(setId: string, e: unknown): Promise<unknown> {
    const kind = e instanceof KeyturnError ? e.code : failureKind(e);
    if (!['ACCESS_DENIED', 'NOT_FOUND', 'DEPENDENCY_FAILED', 'CONFLICT'].includes(kind as string)) return e;
    try {
      const stored = await this.deps.store.readSet(setId);
      if (!stored) return e;
      const now = await this.deps.clock.now();
      const since = stored.doc.kekFailingSince ?? now.toISOString();
      const lost = kekLost(since, now, this.deps.settings.unavailableAfterMs);
      if (stored.doc.kekFailingSince !== since || lost !== (stored.doc.state === 'unavailable')) {
        await this.deps.store.replaceSet({ ...stored.doc, kekFailingSince: since, state: lost ? 'unavailable' : stored.doc.state, updatedAt: now.toISOString() }, stored.etag);
        this.deps.sets.forget(setId);
        if (lost) this.deps.log.warn('Key set unavailable: its KEK failed to unwrap for the whole window', { setId, since });
      }
      return lost ? keySetUnavailable(setId) : kekFailure(e);
    } catch {
      return kekFailure(e);
    }
  }

  private async kekRecovered(setId: string): Promise<void> {
    const stored = await this.deps.store.readSet(setId);
    if (!stored?.doc.kekFailingSince || stored.doc.state === 'unavailable') return;
    const { kekFailingSince: _gone, ...rest } = stored.doc;
    void _gone;
    await this.deps.store.replaceSet(rest as KeySet, stored.etag).catch(() => undefined);
    this.deps.sets.forget(setId);
  }

  /** Seals `value` for the item under the set's primary (a key out of uses gets a successor first). */
  async sealFor(setId: string, itemId: string, value: Buffer, freshSet = false): Promise<{ ciphertext: string; keyId: string; generation: number }> {
    let cached = await this.current(setId, freshSet);
    for (let attempt = 0; ; attempt++) {
      const set = cached.set.doc;
      const keyId = set.primaryKeyId;
      const dataKey = await this.dataKey(cached, keyId);
      try {
        await this.deps.uses.take(set.uid, setId, keyId);
      } catch (e) {
        if (!(e instanceof KeyExhausted) || attempt >= 2) throw e;
        // Retired from encryption before 2^32 uses: a fresh primary (unless another host added one).
        const latest = await this.current(setId, true);
        if (latest.set.doc.primaryKeyId === keyId) await this.addKey(setId);
        cached = await this.current(setId, true);
        continue;
      }
      // The unwrap and the reservation can take long: a write is issued only within the primary TTL of the
      // read that named its key (a retire and the final pass count on it), else the set is read again.
      if (!this.deps.sets.fresh(cached, this.deps.settings.primaryTtlMs)) {
        const latest = await this.current(setId, true);
        const moved = latest.set.doc.primaryKeyId !== keyId;
        cached = latest;
        if (moved) continue;
      }
      const sealed = seal(dataKey, { setUid: set.uid, itemId, keyId }, value);
      return { ciphertext: formatCiphertext(sealed), keyId, generation: set.generation };
    }
  }

  /** The value of a stored item in the clear (its ciphertext checked against set, item and key). */
  async openItem(setId: string, item: Item): Promise<Buffer> {
    const cached = await this.current(setId);
    // An item of an abandoned generation is re-entered, even before the abandon job reached it.
    if (item.state === 'needs-reentry' || !item.ciphertext || item.generation < cached.set.doc.generation) {
      throw new KeyturnError('NEEDS_REENTRY', `Item '${item.id}' was abandoned with its key set's old keys; its owner must store it again`, { setId, itemId: item.id, owner: item.owner });
    }
    const parsed = parseCiphertext(item.ciphertext);
    if (parsed.keyId !== item.keyId) throw ciphertextInvalid({ itemId: item.id, keyId: parsed.keyId });
    return open(await this.dataKey(cached, parsed.keyId), { setUid: cached.set.doc.uid, itemId: item.id }, parsed);
  }

  async putItem(setId: string, itemId: string, input: { value: string; owner: string }) {
    const { store, clock } = this.deps;
    const bytes = valueBytes(input.value);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const existing = await store.readItem(setId, itemId);
        const sealed = await this.sealFor(setId, itemId, bytes, attempt > 0);
        const item: Item = { id: itemId, setId, owner: input.owner, state: 'ok', ciphertext: sealed.ciphertext, keyId: sealed.keyId, generation: sealed.generation, updatedAt: (await clock.now()).toISOString() };
        try {
          const written = await store.writeItem(item, existing?.etag);
          return { created: !existing, item: itemView(written.doc) };
        } catch (e) {
          if (!(e instanceof ConcurrencyConflict)) throw e;
        }
      }
      throw new ConcurrencyConflict('changed', itemId);
    } finally {
      bytes.fill(0);
    }
  }

  async getItem(setId: string, itemId: string) {
    await this.current(setId); // 404 for an unknown set before an unknown item
    const stored = await this.deps.store.readItem(setId, itemId);
    if (!stored) throw notFound(`Item '${itemId}' of key set '${setId}'`, { setId, itemId });
    const value = await this.openItem(setId, stored.doc);
    return { value: value.toString('utf8'), keyId: stored.doc.keyId, owner: stored.doc.owner, updatedAt: stored.doc.updatedAt };
  }

  async deleteItem(setId: string, itemId: string): Promise<void> {
    await this.readSet(setId);
    if (!(await this.deps.store.deleteItem(setId, itemId))) throw notFound(`Item '${itemId}' of key set '${setId}'`, { setId, itemId });
  }

  async listItems(setId: string, page: { top: number; after?: string }) {
    await this.readSet(setId);
    const items = await this.deps.store.listItems(setId, { top: page.top + 1, ...(page.after ? { after: page.after } : {}) });
    const shown = items.slice(0, page.top).map((i) => itemView(i.doc));
    return { items: shown, ...(items.length > page.top ? { next: shown.at(-1)!.itemId } : {}) };
  }
}
