/**
 * Key Vault's Event Grid events: envelopes, due-event scheduling and the
 * once-per-version bookkeeping.
 *
 * NearExpiry and Expired concern only the current (latest) enabled version of a
 * live object. NearExpiry is 30 days before `exp` (for keys, the rotation
 * policy's Notify trigger when there is one). Each (version, type) fires at most
 * once; the marks live in the persisted state so a restart does not repeat them.
 */
import { randomUUID } from 'node:crypto';
import { addDuration, parseDuration } from './duration';
import type { KeyEntry, SecretEntry, VaultState } from './store';

/** Event Grid schema envelope. */
export interface EventGridEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  data: KeyVaultEventData;
  dataVersion: '1';
  metadataVersion: '1';
}

/** PascalCase, as the real service delivers it (the SDK typings are camelCase). */
export interface KeyVaultEventData {
  Id: string;
  VaultName: string;
  ObjectType: 'Key' | 'Secret';
  ObjectName: string;
  Version: string;
  NBF: number | null;
  EXP: number | null;
}

export interface EventSink {
  publish(topic: string, events: EventGridEvent[]): void | Promise<void>;
  /**
   * Resolves once what was published has been delivered (or given up on). A clock
   * move awaits it before telling clock listeners, so the app sees the due events
   * before the timers the move passed.
   */
  settle?(): Promise<void>;
}

export type ObjectKind = 'Key' | 'Secret';
export type VaultEventKind = 'NewVersionCreated' | 'NearExpiry' | 'Expired';

export function vaultTopic(subscriptionId: string, resourceGroup: string, vaultName: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.KeyVault/vaults/${vaultName}`;
}

export interface ObjectVersionInfo {
  kind: ObjectKind;
  name: string;
  version: string;
  nbf?: number;
  exp?: number;
}

/** Builds one Key Vault event (exported for tests and other local tools). */
export function keyVaultEvent(
  topic: string,
  vaultName: string,
  vaultUrl: string,
  type: VaultEventKind,
  obj: ObjectVersionInfo,
  at: Date,
): EventGridEvent {
  const collection = obj.kind === 'Key' ? 'keys' : 'secrets';
  return {
    id: randomUUID(),
    topic,
    subject: obj.name,
    eventType: `Microsoft.KeyVault.${obj.kind}${type}`,
    eventTime: at.toISOString(),
    data: {
      Id: `${vaultUrl}/${collection}/${obj.name}/${obj.version}`,
      VaultName: vaultName,
      ObjectType: obj.kind,
      ObjectName: obj.name,
      Version: obj.version,
      NBF: obj.nbf ?? null,
      EXP: obj.exp ?? null,
    },
    dataVersion: '1',
    metadataVersion: '1',
  };
}

/** A sink that keeps what it receives: handy for tests and the lead's demos. */
export function createEventRecorder(): EventSink & {
  events: EventGridEvent[];
  ofType(type: string): EventGridEvent[];
  clear(): void;
} {
  const events: EventGridEvent[] = [];
  return {
    events,
    publish(_topic, batch) {
      events.push(...batch);
    },
    ofType(type) {
      const full = type.startsWith('Microsoft.') ? type : `Microsoft.KeyVault.${type}`;
      return events.filter((e) => e.eventType === full);
    },
    clear() {
      events.length = 0;
    },
  };
}

// ---------------------------------------------------------------- scheduling

export const NEAR_EXPIRY_DEFAULT = 'P30D';

export type DueType = 'NearExpiry' | 'Expired' | 'Rotate' | 'Purge';

export interface DueItem {
  /** Emulator time (ms) at which it is due. */
  at: number;
  kind: ObjectKind;
  /** Lower-cased map key. */
  key: string;
  version: string;
  type: DueType;
}

const ORDER: Record<DueType, number> = { Rotate: 0, NearExpiry: 1, Expired: 2, Purge: 3 };

export function firedKey(kind: ObjectKind, key: string, version: string, type: string): string {
  return `${kind}|${key}|${version}|${type}`;
}

function current<T extends { attributes: { enabled: boolean } }>(versions: T[]): T | undefined {
  const last = versions[versions.length - 1];
  return last && last.attributes.enabled ? last : undefined;
}

function keyTriggers(entry: KeyEntry): { nearExpiry?: number; rotate?: number } {
  const v = current(entry.versions);
  if (!v) return {};
  const created = new Date(v.attributes.created * 1000);
  const exp = v.attributes.exp !== undefined ? new Date(v.attributes.exp * 1000) : undefined;
  const at = (t: { timeAfterCreate?: string; timeBeforeExpiry?: string }): number | undefined => {
    if (t.timeAfterCreate) {
      const d = parseDuration(t.timeAfterCreate);
      return d ? addDuration(created, d).getTime() : undefined;
    }
    if (t.timeBeforeExpiry && exp) {
      const d = parseDuration(t.timeBeforeExpiry);
      return d ? addDuration(exp, d, -1).getTime() : undefined;
    }
    return undefined;
  };
  const actions = entry.policy?.lifetimeActions ?? [];
  const notify = actions.find((a) => a.action.type === 'Notify');
  const rotate = actions.find((a) => a.action.type === 'Rotate');
  const nearExpiry = notify ? at(notify.trigger) : at({ timeBeforeExpiry: NEAR_EXPIRY_DEFAULT });
  return { nearExpiry, rotate: rotate ? at(rotate.trigger) : undefined };
}

/** Everything not yet done, with its due time (some may lie far in the future). */
export function dueItems(state: VaultState): DueItem[] {
  const out: DueItem[] = [];
  const push = (item: DueItem): void => {
    if (item.type === 'Purge' || state.fired[firedKey(item.kind, item.key, item.version, item.type)] === undefined) {
      out.push(item);
    }
  };
  const expiry = (kind: ObjectKind, key: string, version: string, exp: number | undefined, near: number | undefined): void => {
    if (near !== undefined) push({ at: near, kind, key, version, type: 'NearExpiry' });
    if (exp !== undefined) push({ at: exp * 1000, kind, key, version, type: 'Expired' });
  };
  for (const [key, entry] of Object.entries(state.secrets)) {
    if (entry.deleted) {
      push({ at: entry.deleted.scheduledPurgeDate * 1000, kind: 'Secret', key, version: '', type: 'Purge' });
      continue;
    }
    const v = current(entry.versions);
    if (!v || v.attributes.exp === undefined) continue;
    const near = addDuration(new Date(v.attributes.exp * 1000), parseDuration(NEAR_EXPIRY_DEFAULT)!, -1).getTime();
    expiry('Secret', key, v.version, v.attributes.exp, near);
  }
  for (const [key, entry] of Object.entries(state.keys)) {
    if (entry.deleted) {
      push({ at: entry.deleted.scheduledPurgeDate * 1000, kind: 'Key', key, version: '', type: 'Purge' });
      continue;
    }
    const v = current(entry.versions);
    if (!v) continue;
    const t = keyTriggers(entry);
    expiry('Key', key, v.version, v.attributes.exp, t.nearExpiry);
    if (t.rotate !== undefined) push({ at: t.rotate, kind: 'Key', key, version: v.version, type: 'Rotate' });
  }
  return out;
}

/** The earliest item due at or before `upTo`, ties broken so rotation precedes notices. */
export function nextDue(state: VaultState, upTo: number): DueItem | undefined {
  let best: DueItem | undefined;
  for (const item of dueItems(state)) {
    if (item.at > upTo) continue;
    if (!best || item.at < best.at || (item.at === best.at && ORDER[item.type] < ORDER[best.type])) best = item;
  }
  return best;
}
