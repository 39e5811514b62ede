/**
 * The set's key-encryption key (KEK): what GET …/kek publishes, read only, and the one
 * explicit repair when a Keyturn-owned KEK is gone (POST …/kek/replace). A replacement
 * strands nothing: every data key keeps its wrapping under the old KEK (each key
 * document names the KEK version it is wrapped under), so a recovered old KEK opens them
 * again (and a rewrap moves them onto the replacement), and an import re-wraps them
 * under the replacement from an export.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { type KeySet, kekUnavailable } from '../../domain/keySet';
import { ConcurrencyConflict, KeyturnError, isKeyturnError } from '../../errors';
import type { Clock, Logger, VaultKey, VaultKeys, Versioned } from '../../ports';
import { WRAP_ALG } from './dataKeys';
import type { KeySetService } from './keySetService';
import type { KeySetStore } from './ports';

export interface KekDeps {
  store: KeySetStore;
  keys: VaultKeys;
  clock: Clock;
  service(log: Logger): KeySetService;
}

/** How the set's KEK (at the version data keys are wrapped under) stands in Key Vault; reads only. */
export type KekStatus =
  | { state: 'present'; key: VaultKey }
  /** `recoverable` undefined: Keyturn may not read deleted keys (Crypto Officer cannot), so it does not know. */
  | { state: 'deleted'; recoverable?: boolean }
  | { state: 'access-denied' };

export async function kekStatus(keys: VaultKeys, kek: KeySet['kek']): Promise<KekStatus> {
  try {
    const key = await keys.get({ vaultUrl: kek.vaultUrl, name: kek.name, version: kek.version });
    if (key?.publicJwk) return { state: 'present', key };
  } catch (e) {
    if (isKeyturnError(e, 'ACCESS_DENIED')) return { state: 'access-denied' };
    throw e;
  }
  // Gone: soft-deleted (recoverable until purged) or purged. Reading the deleted key needs a right Keyturn may lack.
  try {
    return { state: 'deleted', recoverable: (await keys.getDeleted(kek.vaultUrl, kek.name)) !== undefined };
  } catch {
    return { state: 'deleted' };
  }
}

const kidOf = (kek: KeySet['kek']) => `${kek.vaultUrl}/keys/${kek.name}/${kek.version}`;

function published(kek: KeySet['kek'], key: VaultKey) {
  const kid = kidOf(kek);
  const pem = createPublicKey({ key: key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  return { kid, alg: WRAP_ALG, jwk: { ...key.publicJwk, kid, alg: WRAP_ALG, use: 'enc' }, pem };
}

/**
 * GET …/kek: the set's current KEK public key (JWK and PEM), what an import encrypts
 * data keys to. Read only: a KEK that is gone answers 409 KEK_UNAVAILABLE naming the
 * ways out (recover it, or replace it through POST …/kek/replace and import).
 */
export async function currentKek(deps: KekDeps, log: Logger, setId: string) {
  const { doc: set } = await deps.service(log).readSet(setId);
  const status = await kekStatus(deps.keys, set.kek);
  if (status.state !== 'present') throw kekUnavailable(set, status);
  return published(set.kek, status.key);
}

/**
 * POST …/kek/replace: a new Keyturn-owned KEK for a set whose own KEK is deleted or
 * purged (refused while it exists, for a customer's KEK, and on a 403: restore access
 * instead). The set records the KEK it replaced; data keys stay wrapped under it.
 */
export async function replaceLostKek(deps: KekDeps, log: Logger, setId: string) {
  const service = deps.service(log);
  for (let attempt = 0; attempt < 3; attempt++) {
    const stored = await service.readSet(setId);
    const set = stored.doc;
    const status = await kekStatus(deps.keys, set.kek);
    if (status.state === 'present') {
      throw new KeyturnError('KEK_PRESENT', `Key set '${setId}' has its KEK (${kidOf(set.kek)}); nothing to replace`, { setId, kid: kidOf(set.kek) });
    }
    if (status.state === 'access-denied') throw kekUnavailable(set, status);
    if (!set.kek.owned) {
      throw new KeyturnError('KEK_NOT_OWNED', `Key set '${setId}' uses a customer's KEK (${kidOf(set.kek)}); restore it in its vault (Keyturn does not replace a customer's key)`, { setId, kid: kidOf(set.kek) });
    }
    const replaced = await replaceOwnedKek(deps, service, stored, log);
    if (!replaced) continue; // another request replaced it first: it is present now
    service.forgetCached(setId);
    return { ...published(replaced.doc.kek, replaced.key), replacedKid: kidOf(set.kek), keySet: await service.view(setId) };
  }
  throw new ConcurrencyConflict('changed', setId);
}

/** Creates the replacement and records it on the set under its ETag; undefined when another writer came first. */
async function replaceOwnedKek(deps: KekDeps, service: KeySetService, stored: Versioned<KeySet>, log: Logger) {
  const set = stored.doc;
  const kek = await service.createOwnedKek(set.setId, randomUUID());
  const key = await deps.keys.get(kek);
  if (!key?.publicJwk) throw new KeyturnError('DEPENDENCY_FAILED', "The key set's new KEK cannot be read; retry later", { setId: set.setId });
  const now = (await deps.clock.now()).toISOString();
  const previous = [...(set.replacedKeks ?? []), { vaultUrl: set.kek.vaultUrl, name: set.kek.name, version: set.kek.version, replacedAt: now }].slice(-10);
  try {
    const saved = await deps.store.replaceSet({ ...set, kek, replacedKeks: previous, updatedAt: now }, stored.etag);
    log.warn('Key set KEK was gone: replaced; data keys stay wrapped under the old one until imported (or the old one is recovered)', {
      setId: set.setId, replaced: kidOf(set.kek), kek: kidOf(kek),
    });
    return { doc: saved.doc, key };
  } catch (e) {
    if (!(e instanceof ConcurrencyConflict)) throw e;
    await deps.keys.delete(kek.vaultUrl, kek.name).catch(() => undefined); // the loser's key, never used
    return undefined;
  }
}

/**
 * A KEK that wraps a fresh data key now (abandon): the set's own, or for a Keyturn-owned
 * one that is gone, a new one (the caller records it on the set with its other changes).
 */
export async function workingKek(deps: Pick<KekDeps, 'keys'>, service: KeySetService, set: KeySet): Promise<KeySet['kek']> {
  const status = await kekStatus(deps.keys, set.kek);
  if (status.state === 'present' || !set.kek.owned) return set.kek;
  return service.createOwnedKek(set.setId, randomUUID());
}
