/**
 * Keeping Key Vault in step with the key set (pure): which keys' vault copies lag, and
 * recording the follow-up writes and expiry notices the service made. The set is the
 * truth; the vault's state tag and enabled flag follow it.
 */
import { type KeySet, type KeyState, type SigningKey, trimRetired } from './signingKeys';

/** Keys whose Key Vault copy (state tag, enabled flag) lags the set (an unknown copy lags too). */
export const vaultSyncNeeded = (set: KeySet | undefined): SigningKey[] =>
  set?.keys.filter((k) => k.vaultState !== k.state) ?? [];

/** A Key Vault state write a follow-up made: the key, the state written, and `vaultState` as it was read before. */
export interface VaultWrite {
  kid: string;
  state: KeyState;
  from: KeyState | undefined;
}

/**
 * The set with finished follow-ups recorded: rollover records stored, and for every
 * Key Vault write the state actually written, even when the key's state has moved on
 * meanwhile (an emergency retired it): it then shows as lagging and the next run writes
 * again. If another follow-up recorded a different write since this one read the key,
 * which of the two landed last in Key Vault is unknown: `vaultState` is dropped, so the
 * key lags and is written again. Undefined when nothing changes.
 */
export function markFollowUpsDone(
  set: KeySet,
  done: { synced: VaultWrite[]; storedRecords: string[] },
  now: Date,
): KeySet | undefined {
  let changed = false;
  const keys = set.keys.map((k) => {
    const write = done.synced.find((s) => s.kid === k.kid);
    if (!write || k.vaultState === write.state) return k;
    changed = true;
    const { vaultState, ...rest } = k;
    return vaultState === write.from ? { ...rest, vaultState: write.state } : rest;
  });
  const outbox = (set.outbox ?? []).filter((r) => !done.storedRecords.includes(r.id));
  if (!changed && outbox.length === (set.outbox ?? []).length) return undefined;
  return {
    ...set,
    version: set.version + 1,
    keys: trimRetired(keys),
    outbox,
    updatedAt: now.toISOString(),
  };
}

/**
 * Records a KeyNearExpiry/KeyExpired event for one of the set's keys; undefined when
 * the key is not in the set, is retired, or already has a notice (events repeat).
 */
export function markExpiryNotice(
  set: KeySet | undefined,
  vaultKey: { vault: string; name: string; version?: string },
  eventType: string,
  now: Date,
): { set: KeySet; key: SigningKey } | 'not-managed' | 'no-change' {
  const key = set?.keys.find(
    (k) =>
      k.vaultKey.vault.toLowerCase() === vaultKey.vault.toLowerCase() &&
      k.vaultKey.name.toLowerCase() === vaultKey.name.toLowerCase() &&
      (!vaultKey.version || k.vaultKey.version === vaultKey.version),
  );
  if (!set || !key) return 'not-managed';
  if (key.state === 'retired' || key.expiryNotice) return 'no-change';
  const marked = { ...key, expiryNotice: { eventType, at: now.toISOString() } };
  return {
    set: {
      ...set,
      version: set.version + 1,
      keys: set.keys.map((k) => (k.kid === key.kid ? marked : k)),
      updatedAt: now.toISOString(),
    },
    key: marked,
  };
}
