/**
 * Key Vault events, normalised from both delivery schemas (Event Grid and CloudEvents
 * 1.0). Pure: zod only.
 *
 * Real deliveries carry PascalCase `data` (`VaultName`, `NBF`, …) while the SDK typings
 * are camelCase, the documentation sample has stray spaces in keys and values, and
 * NBF/EXP arrive as numbers, numeric strings or null. So `data` keys are trimmed and
 * compared case-insensitively, and times accept all three forms.
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';

export const MAX_EVENT_BYTES = 64 * 1024;

export type ObjectType = 'Secret' | 'Key' | 'Certificate';

export interface KeyVaultEvent {
  schema: 'EventGrid' | 'CloudEvents';
  id: string;
  /** Full type, e.g. `Microsoft.KeyVault.SecretNearExpiry`. */
  type: string;
  /** `SecretNearExpiry`, `KeyExpired`, … (the type without the namespace). */
  kind: string;
  topic: string;
  /** The vault named by the topic (and by `data.VaultName`, which must agree). */
  vaultName: string;
  objectType: ObjectType;
  objectName: string;
  version: string;
  nbf: Date | null;
  exp: Date | null;
  eventTime?: string;
}

export type EventReading =
  | { ok: true; event: KeyVaultEvent }
  | { ok: true; ignored: true; type: string; topic: string; id: string }
  | { ok: false; reason: 'malformed' | 'oversized' | 'unsupported'; detail: string };

const name = lazySchema(() => z.string().trim().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault object name'));
const nonEmpty = lazySchema(() => z.string().trim().min(1));

const eventGridEnvelope = lazySchema(() =>
  z.object({
    id: nonEmpty,
    topic: nonEmpty,
    subject: z.string().trim().optional(),
    eventType: nonEmpty,
    eventTime: z.string().optional(),
    data: z.record(z.string(), z.unknown()),
  }),
);

const cloudEventEnvelope = lazySchema(() =>
  z.object({
    specversion: z.literal('1.0'),
    id: nonEmpty,
    source: nonEmpty,
    type: nonEmpty,
    subject: z.string().trim().optional(),
    time: z.string().optional(),
    data: z.record(z.string(), z.unknown()),
  }),
);

/** Unix seconds as a number, a numeric string or null. */
const epoch = lazySchema(() =>
  z
    .union([z.number().int().nonnegative(), z.string().trim().regex(/^\d+$/, 'expected Unix seconds').transform(Number), z.null()])
    .optional()
    .transform((s) => (s === undefined || s === null || s === 0 ? null : new Date(s * 1000))),
);

const objectData = lazySchema(() =>
  z.object({
    vaultname: nonEmpty.optional(),
    objecttype: z.enum(['Secret', 'Key', 'Certificate']),
    objectname: name,
    version: z.string().trim().regex(/^[0-9a-zA-Z]{1,64}$/, 'expected a version id'),
    nbf: epoch,
    exp: epoch,
  }),
);

/** `/subscriptions/…/providers/Microsoft.KeyVault/vaults/{name}` → name. */
export function vaultNameOfTopic(topic: string): string | undefined {
  const m = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/([0-9a-zA-Z-]{1,127})$/i.exec(topic.trim());
  return m?.[1];
}

/** Own data properties only: a `__proto__` key stays a key (it never supplies fields through the prototype). */
function lowerKeys(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.trim().toLowerCase(), v]));
}

function issue(error: z.ZodError, prefix: string): string {
  const first = error.issues[0];
  const path = [prefix, ...(first?.path.map(String) ?? [])].filter(Boolean).join('.');
  return `${path || '(event)'}: ${first?.message ?? 'invalid'}`;
}

/** Parses one delivered event. Never throws; `ok: false` says why it was refused. */
export function readKeyVaultEvent(raw: unknown, rawBytes?: number): EventReading {
  const size = rawBytes ?? byteSize(raw);
  if (size > MAX_EVENT_BYTES) return { ok: false, reason: 'oversized', detail: `event is ${size} bytes (limit ${MAX_EVENT_BYTES})` };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: 'malformed', detail: '(event): expected a JSON object' };
  }
  const isCloud = 'specversion' in raw || ('source' in raw && 'type' in raw && !('eventType' in raw));
  const envelope = isCloud ? cloudEventEnvelope.safeParse(raw) : eventGridEnvelope.safeParse(raw);
  if (!envelope.success) return { ok: false, reason: 'malformed', detail: issue(envelope.error, '') };
  const e = envelope.data;
  const common = 'source' in e
    ? { schema: 'CloudEvents' as const, id: e.id, type: e.type, topic: e.source, subject: e.subject, eventTime: e.time }
    : { schema: 'EventGrid' as const, id: e.id, type: e.eventType, topic: e.topic, subject: e.subject, eventTime: e.eventTime };

  if (!/^Microsoft\.KeyVault\./.test(common.type)) {
    return { ok: false, reason: 'unsupported', detail: `eventType: '${common.type.slice(0, 100)}' is not a Key Vault event` };
  }
  const topicVault = vaultNameOfTopic(common.topic);
  if (!topicVault) return { ok: false, reason: 'malformed', detail: 'topic: expected a Key Vault resource id' };
  const kind = common.type.slice('Microsoft.KeyVault.'.length);
  if (!/^(Secret|Key|Certificate)(NewVersionCreated|NearExpiry|Expired)$/.test(kind)) {
    return { ok: true, ignored: true, type: common.type, topic: common.topic, id: common.id };
  }
  const data = objectData.safeParse(lowerKeys(e.data));
  if (!data.success) return { ok: false, reason: 'malformed', detail: issue(data.error, 'data') };
  const d = data.data;
  if (d.vaultname && d.vaultname.toLowerCase() !== topicVault.toLowerCase()) {
    return { ok: false, reason: 'malformed', detail: 'data.VaultName: does not match the topic' };
  }
  if (!kind.startsWith(d.objecttype)) {
    return { ok: false, reason: 'malformed', detail: 'data.ObjectType: does not match the event type' };
  }
  if (common.subject && common.subject.toLowerCase() !== d.objectname.toLowerCase()) {
    return { ok: false, reason: 'malformed', detail: 'subject: does not match data.ObjectName' };
  }
  return {
    ok: true,
    event: {
      schema: common.schema,
      id: common.id,
      type: common.type,
      kind,
      topic: common.topic,
      vaultName: topicVault,
      objectType: d.objecttype,
      objectName: d.objectname,
      version: d.version.toLowerCase(),
      nbf: d.nbf,
      exp: d.exp,
      ...(common.eventTime ? { eventTime: common.eventTime } : {}),
    },
  };
}

/**
 * What a dead letter keeps of a refused event: its envelope and the names of its
 * `data` keys, never `data` values (an untrusted payload may carry anything).
 */
export interface EventProjection {
  id?: string;
  /** `eventType` (Event Grid) or `type` (CloudEvents). */
  eventType?: string;
  subject?: string;
  /** `topic` (Event Grid) or `source` (CloudEvents). */
  topic?: string;
  dataVersion?: string;
  /** `eventTime` (Event Grid) or `time` (CloudEvents). */
  eventTime?: string;
  /** The sorted names of `data`'s keys: at most DATA_KEYS_KEPT, each cut to DATA_KEY_CHARS. */
  dataKeys: string[];
  /** How many keys `data` had (null when `data` is not an object). */
  dataKeyCount: number | null;
}

export const PROJECTED_STRING_CHARS = 300;
export const DATA_KEYS_KEPT = 20;
export const DATA_KEY_CHARS = 64;

export function projectEvent(raw: unknown): EventProjection {
  const e = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const str = (...keys: string[]): string | undefined => {
    for (const k of keys) if (typeof e[k] === 'string') return (e[k] as string).slice(0, PROJECTED_STRING_CHARS);
    return undefined;
  };
  const data = e.data;
  const keys = typeof data === 'object' && data !== null && !Array.isArray(data) ? Object.keys(data) : undefined;
  const fields = {
    id: str('id'),
    eventType: str('eventType', 'type'),
    subject: str('subject'),
    topic: str('topic', 'source'),
    dataVersion: str('dataVersion'),
    eventTime: str('eventTime', 'time'),
  };
  return {
    ...(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<typeof fields>),
    dataKeys: (keys ?? []).sort().slice(0, DATA_KEYS_KEPT).map((k) => k.slice(0, DATA_KEY_CHARS)),
    dataKeyCount: keys?.length ?? null,
  };
}

export function byteSize(raw: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(raw) ?? '');
  } catch {
    return Number.POSITIVE_INFINITY; // cyclic or otherwise unserialisable: refuse it
  }
}

/**
 * The vault alias (a name in KEYTURN_VAULTS) an event's vault name stands for, or
 * undefined when the vault is not ours. Explicit mapping first (KEYTURN_EVENT_VAULT_NAMES),
 * then an alias equal to the name, then a vault URL whose first host label is the name.
 * Own properties only: a vault named `constructor` is not ours.
 */
export function resolveVaultAlias(
  vaultName: string,
  vaults: Record<string, string>,
  eventVaultNames: Record<string, string> = {},
): string | undefined {
  const wanted = vaultName.toLowerCase();
  const isAlias = (alias: string) => Object.hasOwn(vaults, alias) && typeof vaults[alias] === 'string';
  const mapped = Object.entries(eventVaultNames).find(([n]) => n.toLowerCase() === wanted)?.[1];
  if (mapped !== undefined) return isAlias(mapped.toLowerCase()) ? mapped.toLowerCase() : undefined;
  if (isAlias(wanted)) return wanted;
  for (const [alias, url] of Object.entries(vaults)) {
    const host = safeHost(url);
    if (host && !/^[\d.]+$/.test(host) && host.split('.')[0] === wanted) return alias;
  }
  return undefined;
}

function safeHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
