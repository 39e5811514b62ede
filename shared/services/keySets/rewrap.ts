/**
 * Wrapping-key (KEK) rotation: every data key is unwrapped under the version it was
 * wrapped with and wrapped again under the KEK's new version. No item is read or
 * re-encrypted: ciphertexts stay byte for byte what they were. A Keyturn-owned KEK gets
 * its new version first, sized by the key policy; a customer's KEK is used at its latest.
 * Idempotent: keys already under the target version are left alone.
 */
import { isKeyturnError } from '../../errors';
import { ConcurrencyConflict } from '../../errors';
import type { Clock, Logger, VaultKeys } from '../../ports';
import type { KeyVaultEventHandler } from '../events/ports';
import { WRAP_ALG } from './dataKeys';
import type { KeySetService } from './keySetService';
import type { KeySetStore } from './ports';

export interface RewrapDeps {
  store: KeySetStore;
  keys: VaultKeys;
  clock: Clock;
  service(log: Logger): KeySetService;
}

export async function rewrapKeySet(deps: RewrapDeps, log: Logger, setId: string, options: { rotate: boolean } = { rotate: true }) {
  const service = deps.service(log);
  const { doc: set } = await service.readSet(setId);
  const kek = set.kek;
  const version =
    kek.owned && options.rotate
      ? (await service.ownedKekVersion(setId, kek.vaultUrl, kek.name)).version
      : ((await deps.keys.get({ vaultUrl: kek.vaultUrl, name: kek.name }))?.properties.version ?? kek.version);
  const cached = await service.current(setId, true);
  let rewrapped = 0;
  for (const { doc: key, etag } of await deps.store.listKeys(setId)) {
    if (key.kek.version === version && key.kek.name === kek.name) continue;
    const plain = await service.dataKey(cached, key.keyId);
    const wrapped = await deps.keys.wrap({ vaultUrl: kek.vaultUrl, name: kek.name, version }, WRAP_ALG, plain);
    const now = (await deps.clock.now()).toISOString();
    await deps.store.replaceKey({ ...key, wrapped: Buffer.from(wrapped).toString('base64url'), kek: { vaultUrl: kek.vaultUrl, name: kek.name, version }, updatedAt: now }, etag);
    rewrapped++;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const latest = await service.readSet(setId);
    if (latest.doc.kek.version === version && rewrapped === 0) break;
    try {
      const now = (await deps.clock.now()).toISOString();
      await deps.store.replaceSet({ ...latest.doc, kek: { ...latest.doc.kek, version }, keysVersion: latest.doc.keysVersion + (rewrapped > 0 ? 1 : 0), updatedAt: now }, latest.etag);
      break;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  service.forgetCached(setId);
  log.info('Key set data keys re-wrapped under the KEK version', { setId, kekVersion: version, rewrapped });
  return { keySet: await service.view(setId), rewrapped, kekVersion: version };
}

/** KeyNearExpiry / KeyExpired of a set's KEK → rewrap (Keyturn-owned: under a new version). */
export function keySetKekEventHandler(deps: RewrapDeps & { vaultUrlOf: (alias: string) => string | undefined }): KeyVaultEventHandler {
  return {
    name: 'key-sets',
    async handle({ vaultAlias, event }, log) {
      if (event.objectType !== 'Key' || (event.kind !== 'KeyNearExpiry' && event.kind !== 'KeyExpired')) return { answer: 'not-mine' };
      const vaultUrl = deps.vaultUrlOf(vaultAlias);
      const sets = await deps.store.setsByKek(event.objectName);
      const set = sets.find((s) => s.doc.kek.vaultUrl === vaultUrl);
      if (!set) return { answer: 'not-mine' };
      // A redelivered event finds the set on a newer version than the event's: nothing to do.
      if (set.doc.kek.version.toLowerCase() !== event.version.toLowerCase()) return { answer: 'handled', outcome: 'already-rewrapped' };
      try {
        const { rewrapped, kekVersion } = await rewrapKeySet(deps, log, set.doc.setId, { rotate: true });
        return { answer: 'handled', outcome: 'rewrapped', detail: { setId: set.doc.setId, rewrapped, kekVersion } };
      } catch (e) {
        if (isKeyturnError(e, 'NOT_FOUND')) return { answer: 'handled', outcome: 'set-gone' };
        throw e;
      }
    },
  };
}
