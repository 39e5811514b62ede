/**
 * Brings Key Vault in line with the key set after a transition: each key's state tag
 * and enabled flag, and the outbox's rollover records stored as their own documents;
 * then records both in the set. Failures are logged and retried by the next run.
 */
import { type VaultWrite, markFollowUpsDone, vaultSyncNeeded } from '../../domain/signingKeyVaultSync';
import { ConcurrencyConflict, describeError } from '../../errors';
import type { StoredKeySet } from './ports';
import { MAX_ATTEMPTS, type SigningKeyDeps, logText } from './signingDeps';

export class VaultSync {
  constructor(private readonly deps: SigningKeyDeps) {}

  async followUp(stored: StoredKeySet | undefined): Promise<StoredKeySet | undefined> {
    const { keys, sets, clock, log, settings } = this.deps;
    const synced: VaultWrite[] = [];
    const storedRecords: string[] = [];
    for (const key of vaultSyncNeeded(stored?.set)) {
      try {
        await keys.setState(key.vaultKey, key.state);
        synced.push({ kid: key.kid, state: key.state, from: key.vaultState });
      } catch (e) {
        log.warn('Key Vault state write failed; the next run retries', { kid: key.kid, state: key.state, error: logText(e) });
      }
    }
    for (const record of stored?.set.outbox ?? []) {
      try {
        await sets.saveRollover(record);
        storedRecords.push(record.id);
      } catch (e) {
        log.warn('Storing a rollover record failed; the next run retries', { id: record.id, error: describeError(e) });
      }
    }
    let current = stored;
    for (let attempt = 1; current && attempt <= MAX_ATTEMPTS; attempt++) {
      const marked = markFollowUpsDone(current.set, { synced, storedRecords }, await clock.now());
      if (!marked) return current;
      try {
        return await sets.write(marked, current.etag);
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
        current = await sets.read(settings.issuer);
      }
    }
    return current;
  }
}
