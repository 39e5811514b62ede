/**
 * Due work across the vaults: NearExpiry / Expired events, policy rotations and
 * the purge of soft-deleted objects at `scheduledPurgeDate`, each carried out at its
 * own time, in time order across every vault, while the clock walks forward.
 */
import type { VaultClock } from './clock';
import type { VaultContext } from './common';
import { firedKey, nextDue, type DueItem, type ObjectKind, type VaultEventKind } from './events';
import { rotateEntry } from './keys';
import type { Attributes, VaultState } from './store';

/** Guards against a policy that would rotate without end during one walk. */
const MAX_ITEMS_PER_WALK = 10_000;

export type Emit = (type: VaultEventKind, kind: ObjectKind, name: string, version: string, attributes: Attributes) => void;

/** What the runner needs of one vault. */
export interface DueVault {
  vaultName: string;
  state(): VaultState;
  execute(item: DueItem): void;
}

/** Carries out one due item in one vault (at the clock's pinned time). */
export function dueExecutor(ctx: VaultContext, emit: Emit): (item: DueItem) => void {
  return (item) => {
    const state = ctx.store.state;
    const map = item.kind === 'Key' ? state.keys : state.secrets;
    const entry = map[item.key];
    if (!entry) return;
    if (item.type === 'Purge') {
      delete map[item.key];
      return;
    }
    state.fired[firedKey(item.kind, item.key, item.version, item.type)] = ctx.clock.nowMs();
    const v = entry.versions.find((x) => x.version === item.version);
    if (!v) return;
    if (item.type === 'Rotate') {
      rotateEntry(ctx, entry as Parameters<typeof rotateEntry>[1]);
      return;
    }
    // A version that is already past exp gets Expired, not a late NearExpiry.
    if (item.type === 'NearExpiry' && v.attributes.exp !== undefined && ctx.clock.nowMs() >= v.attributes.exp * 1000) return;
    emit(item.type, item.kind, entry.name, v.version, v.attributes);
  };
}

/**
 * `runDue(upTo, from)` carries out everything due in every vault up to `upTo`, each at
 * its own time (never before `from`), in time order across vaults, and says how many.
 * Synchronous: no request sees a half-walked clock.
 */
export function dueRunner(vaults: () => readonly DueVault[], clock: VaultClock, log: (line: string) => void): (upTo: number, from?: number) => number {
  return (upTo, from = clock.nowMs()) => {
    let cursor = from;
    let n = 0;
    for (;;) {
      let best: { vault: DueVault; item: DueItem } | undefined;
      for (const vault of vaults()) {
        const item = nextDue(vault.state(), upTo);
        if (item && (!best || item.at < best.item.at)) best = { vault, item };
      }
      if (!best) break;
      if (++n > MAX_ITEMS_PER_WALK) {
        log('keyvault: too many due items in one clock walk; stopping early');
        break;
      }
      cursor = Math.max(cursor, best.item.at);
      const due = best;
      try {
        clock.at(cursor, () => due.vault.execute(due.item));
      } catch (e) {
        log(`keyvault: due ${due.item.type} for ${due.item.kind} in ${due.vault.vaultName} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return n;
  };
}
