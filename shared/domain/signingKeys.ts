/**
 * Signing-key rollover as a pure state machine over plain data (no I/O).
 *
 *   next (published, not signing) → current (signs) → previous (published, verifies) → retired
 *
 * The service asks `planScheduled` / `planEmergency` what to do, creates the Key Vault
 * keys the transition needs (`newKeysFor`), then writes `applyTransition`'s result
 * guarded by the key set's ETag; a lost race re-reads and re-plans.
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';

export type KeyState = 'next' | 'current' | 'previous' | 'retired';
export type SigningKeyType = 'RSA-2048' | 'EC-P256';
export type SigningAlg = 'RS256' | 'ES256';

export const ALG_OF: Record<SigningKeyType, SigningAlg> = { 'RSA-2048': 'RS256', 'EC-P256': 'ES256' };

/** The public half of a key as published in the JWKS (never private members). */
export interface PublicJwk {
  kty: 'RSA' | 'EC';
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

/** Where the private key lives: one Key Vault key per generation, pinned to a version (a key ref). */
export interface VaultKeyRef {
  /** The vault's alias (KEYTURN_VAULTS), resolved to its URL when used. */
  vault: string;
  name: string;
  version: string;
}

export interface SigningKey {
  /** RFC 7638 thumbprint of the public key: stable and not secret. */
  kid: string;
  alg: SigningAlg;
  vaultKey: VaultKeyRef;
  /** Dropped once retired: the key set document stays small. */
  publicJwk?: PublicJwk;
  state: KeyState;
  createdAt: string;
  expiresAt: string;
  publishedAt: string;
  signingFrom?: string;
  signingUntil?: string;
  retiredAt?: string;
  compromised?: boolean;
  /** A KeyNearExpiry/KeyExpired event named this key: it must stop being (or becoming) the signer. */
  expiryNotice?: { eventType: string; at: string };
  /** The state last written to the Key Vault key (tag; retired = disabled). Lags `state` until synced. */
  vaultState?: KeyState;
}

/** One issuer's keys; a single document, so every transition is one ETag-guarded write. */
export interface KeySet {
  id: 'keyset';
  issuer: string;
  /** Bumped on every write; the JWKS cache and rollover record ids key off it. */
  version: number;
  /** Generation number of the next Key Vault key (`{keyName}-{generation}`). */
  nextGeneration: number;
  keys: SigningKey[];
  /** Rollover records written with the transition, waiting to be stored as their own documents. */
  outbox?: RolloverRecord[];
  updatedAt: string;
}

/** A key the vault has just created, before it has a place in the set. */
export interface NewKey {
  kid: string;
  alg: SigningAlg;
  vaultKey: VaultKeyRef;
  publicJwk: PublicJwk;
  createdAt: string;
  expiresAt: string;
}

export interface RolloverPolicy {
  rolloverMs: number;
  publishAheadMs: number;
  tokenMaxLifetimeMs: number;
  /** The JWKS `max-age`: after that long a published key is in every relying party's cache. */
  jwksMaxAgeMs: number;
}

/** A `kid` as Keyturn makes it: the base64url SHA-256 RFC 7638 thumbprint (43 characters). */
export const kidSchema = lazySchema(() => z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'must be a key id (kid) from the JWKS' }));

/** `policy`: the key policy's minimum rose above a key's size (the algorithm-weakness playbook). */
export type Trigger = 'bootstrap' | 'schedule' | 'expiry' | 'emergency' | 'policy';

export type Transition =
  /** No keys yet: a fresh key signs at once (nothing can have cached a set) and a next is published. */
  | { type: 'bootstrap' }
  /** next → current, current → previous (or retired if compromised), a new next. */
  | { type: 'promote'; trigger: Trigger; nextKid: string; compromisedKid?: string }
  /** No usable next: a fresh key signs at once, a new next, the old signer leaves signing. */
  | { type: 'replace'; trigger: Trigger; compromisedKid?: string }
  /** The next is missing or unusable: publish a new one (an unusable next is retired; it never signed). */
  | { type: 'add-next' }
  /** Unpublish keys; compromised ones are marked so. */
  | { type: 'retire'; kids: string[]; compromised: boolean };

/** Who asked for a rollover and why; stored with every rollover. */
export interface RolloverRequest {
  requestedBy: string;
  /** True when the platform vouched for `requestedBy` (or Keyturn itself rolled); false when self-declared. */
  requestedByVerified: boolean;
  reason: string;
}

/** A requester name as recorded: 1–200 characters after trimming, none of them control or invisible format characters. */
export const requesterSchema = lazySchema(() =>
  z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[^\p{C}]+$/u, { error: 'must be printable text (no control or invisible characters)' }),
);

export interface RolloverRecord {
  id: string;
  type: 'rollover';
  issuer: string;
  at: string;
  trigger: Trigger;
  requestedBy: string;
  requestedByVerified: boolean;
  reason: string;
  compromised: boolean;
  /** The key that signed before (absent on bootstrap). */
  fromKid?: string;
  /** The key that signs now. */
  toKid: string;
  /** The key published to sign next. */
  nextKid?: string;
  retiredKids: string[];
  keySetVersion: number;
}

const DAY_MS = 86_400_000;
/** Key Vault raises KeyNearExpiry 30 days before `exp`: the margin keeps it after normal retirement. */
const EXPIRY_MARGIN_MS = 30 * DAY_MS;
/** Retired keys kept in the set document (for vault sync and audit); older ones are dropped. */
const RETIRED_KEPT = 5;

const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) : Number.NaN);

/** `exp` of a new key: it must outlive being next, current and previous, plus the event margin. */
export function keyExpiry(createdAt: Date, p: RolloverPolicy): Date {
  return new Date(createdAt.getTime() + 2 * p.rolloverMs + p.publishAheadMs + p.tokenMaxLifetimeMs + EXPIRY_MARGIN_MS);
}

export const keysIn = (set: KeySet | undefined, state: KeyState): SigningKey[] =>
  set?.keys.filter((k) => k.state === state) ?? [];

export const signingKey = (set: KeySet | undefined): SigningKey | undefined => keysIn(set, 'current')[0];

/** next, current and previous keys, in that order: what the JWKS lists. */
export function publishedKeys(set: KeySet | undefined): SigningKey[] {
  return [...keysIn(set, 'next'), ...keysIn(set, 'current'), ...keysIn(set, 'previous')];
}

/**
 * A next key may be promoted: not expiring and it can outlive a full-lifetime token.
 * With `settledMs`, a next published at least that long ago (relying parties have
 * fetched it) is preferred over a younger one.
 */
function usableNext(set: KeySet | undefined, now: Date, p: RolloverPolicy, settledMs?: number): SigningKey | undefined {
  const usable = keysIn(set, 'next').filter(
    (k) => !k.compromised && !k.expiryNotice && ms(k.expiresAt) > now.getTime() + p.tokenMaxLifetimeMs,
  );
  if (settledMs === undefined) return usable[0];
  return usable.find((k) => ms(k.publishedAt) + settledMs <= now.getTime()) ?? usable[0];
}

/** How long a next must have been published to be in relying parties' caches: publish-ahead, or the JWKS max-age if shorter. */
export const emergencySettledMs = (p: RolloverPolicy): number => Math.min(p.publishAheadMs, p.jwksMaxAgeMs);

/** When the current key must stop signing, as soon as a next key has been published long enough. */
function rollDue(current: SigningKey, now: Date, p: RolloverPolicy): Trigger | undefined {
  if (current.expiryNotice || ms(current.expiresAt) <= now.getTime() + p.tokenMaxLifetimeMs) return 'expiry';
  return ms(current.signingFrom) + p.rolloverMs <= now.getTime() ? 'schedule' : undefined;
}

/** Tokens signed by a previous key have expired and relying parties have refetched. */
const retireDue = (k: SigningKey, now: Date, p: RolloverPolicy): boolean =>
  ms(k.signingUntil) + p.tokenMaxLifetimeMs + p.publishAheadMs <= now.getTime();

/** What the hourly timer should do next, or undefined when the set is as it should be. */
export function planScheduled(set: KeySet | undefined, now: Date, p: RolloverPolicy): Transition | undefined {
  const current = signingKey(set);
  const next = usableNext(set, now, p);
  if (!current) {
    if (!set || set.keys.every((k) => k.state === 'retired')) return { type: 'bootstrap' };
    return next ? { type: 'promote', trigger: 'expiry', nextKid: next.kid } : { type: 'replace', trigger: 'expiry' };
  }
  if (!next) return { type: 'add-next' };
  const due = rollDue(current, now, p);
  if (due && ms(next.publishedAt) + p.publishAheadMs <= now.getTime()) return { type: 'promote', trigger: due, nextKid: next.kid };
  const retire = keysIn(set, 'previous').filter((k) => retireDue(k, now, p)).map((k) => k.kid);
  if (retire.length > 0) return { type: 'retire', kids: retire, compromised: false };
  return undefined;
}

/**
 * Emergency rollover. `targetKid` is the key that signed when the request arrived: if a
 * concurrent rollover already moved it out of signing, only its compromise is left to do.
 */
export function planEmergency(
  set: KeySet | undefined,
  now: Date,
  p: RolloverPolicy,
  request: { compromised: boolean; targetKid?: string },
): Transition | undefined {
  const current = signingKey(set);
  if (!set || (!current && keysIn(set, 'next').length === 0)) return { type: 'bootstrap' };
  if (request.targetKid && current?.kid !== request.targetKid) {
    const target = set.keys.find((k) => k.kid === request.targetKid);
    return request.compromised && target && target.state !== 'retired'
      ? { type: 'retire', kids: [target.kid], compromised: true }
      : undefined;
  }
  const compromisedKid = request.compromised ? current?.kid : undefined;
  const next = usableNext(set, now, p, emergencySettledMs(p));
  return next
    ? { type: 'promote', trigger: 'emergency', nextKid: next.kid, compromisedKid }
    : { type: 'replace', trigger: 'emergency', compromisedKid };
}

/** The RSA modulus size of a published key; undefined for EC keys and retired keys (no public key kept). */
export function rsaBitsOf(k: SigningKey): number | undefined {
  return k.publicJwk?.kty === 'RSA' && k.publicJwk.n ? Buffer.from(k.publicJwk.n, 'base64url').length * 8 : undefined;
}

/**
 * Replacing a key below the policy's RSA minimum (new keys are made at the policy's size):
 * the signer → a fresh signer and next (the weak one stays published as previous for
 * the tokens it signed); a weak next → a new next. Undefined once nothing is to do
 * (gone, retired, previous — it no longer signs — EC, or large enough): a retry is a no-op.
 */
export function planPolicyReplace(set: KeySet | undefined, rsaMinBits: number, kid: string): Transition | undefined {
  const target = set?.keys.find((k) => k.kid === kid);
  const bits = target ? rsaBitsOf(target) : undefined;
  if (!target || bits === undefined || bits >= rsaMinBits) return undefined;
  if (target.state === 'current') return { type: 'replace', trigger: 'policy' };
  if (target.state === 'next') return { type: 'add-next' };
  return undefined;
}

export function newKeysFor(t: Transition): number {
  switch (t.type) {
    case 'bootstrap':
    case 'replace':
      return 2;
    case 'promote':
    case 'add-next':
      return 1;
    case 'retire':
      return 0;
  }
}

export function emptyKeySet(issuer: string, now: Date): KeySet {
  return { id: 'keyset', issuer, version: 0, nextGeneration: 1, keys: [], updatedAt: now.toISOString() };
}

const retire = (k: SigningKey, at: string, compromised: boolean): SigningKey => {
  const { publicJwk, ...rest } = k;
  void publicJwk;
  return {
    ...rest,
    state: 'retired',
    retiredAt: at,
    signingUntil: k.state === 'current' ? at : k.signingUntil,
    ...(compromised ? { compromised: true } : {}),
  };
};

const fromNew = (k: NewKey, state: KeyState, at: string): SigningKey => ({
  ...k,
  state,
  publishedAt: at,
  ...(state === 'current' ? { signingFrom: at } : {}),
});

/**
 * The set after `t`, with the record of the rollover when `t` changes the signer.
 * `newKeys` are the keys created for it (`newKeysFor(t)` of them, the signer first).
 */
export function applyTransition(
  before: KeySet | undefined,
  t: Transition,
  ctx: { issuer: string; now: Date; newKeys: NewKey[]; request?: RolloverRequest },
): { set: KeySet; record?: RolloverRecord } {
  if (ctx.newKeys.length !== newKeysFor(t)) {
    throw new Error(`${t.type} needs ${newKeysFor(t)} new key(s), got ${ctx.newKeys.length}`);
  }
  const base = before ?? emptyKeySet(ctx.issuer, ctx.now);
  const at = ctx.now.toISOString();
  const [first, second] = ctx.newKeys;
  const oldCurrent = signingKey(base);
  let keys = base.keys;
  let signer: SigningKey | undefined;
  const retiredKids: string[] = [];

  const replaceKeys = (fn: (k: SigningKey) => SigningKey) => (keys = keys.map(fn));
  const retireWhere = (pred: (k: SigningKey) => boolean, compromised: (k: SigningKey) => boolean) =>
    replaceKeys((k) => {
      if (k.state === 'retired' || !pred(k)) return k;
      retiredKids.push(k.kid);
      return retire(k, at, compromised(k));
    });
  /** The old signer stops signing: previous, or retired at once when compromised. */
  const demoteSigner = (compromisedKid: string | undefined) =>
    replaceKeys((k) => {
      if (k.state !== 'current') return k;
      if (k.kid === compromisedKid) {
        retiredKids.push(k.kid);
        return retire(k, at, true);
      }
      return { ...k, state: 'previous', signingUntil: at };
    });

  switch (t.type) {
    case 'bootstrap':
      retireWhere((k) => k.state === 'next', () => false);
      signer = fromNew(first!, 'current', at);
      keys = [...keys, signer, fromNew(second!, 'next', at)];
      break;
    case 'promote': {
      if (!keysIn(base, 'next').some((k) => k.kid === t.nextKid)) throw new Error(`${t.nextKid} is not a next key`);
      demoteSigner(t.compromisedKid);
      replaceKeys((k) => (k.kid === t.nextKid ? { ...k, state: 'current', signingFrom: at } : k));
      retireWhere((k) => k.state === 'next', () => false); // any other (unusable) next never signed
      signer = keys.find((k) => k.kid === t.nextKid);
      keys = [...keys, fromNew(first!, 'next', at)];
      break;
    }
    case 'replace':
      demoteSigner(t.compromisedKid);
      retireWhere((k) => k.state === 'next', () => false);
      signer = fromNew(first!, 'current', at);
      keys = [...keys, signer, fromNew(second!, 'next', at)];
      break;
    case 'add-next':
      retireWhere((k) => k.state === 'next', () => false);
      keys = [...keys, fromNew(first!, 'next', at)];
      break;
    case 'retire':
      retireWhere((k) => t.kids.includes(k.kid), () => t.compromised);
      break;
  }

  const set: KeySet = {
    ...base,
    version: base.version + 1,
    nextGeneration: base.nextGeneration + ctx.newKeys.length,
    keys: trimRetired(keys),
    updatedAt: at,
  };
  // A record for every change of signer, and for every requested change (an emergency can end as a retire).
  const changedSigner = t.type === 'bootstrap' || t.type === 'promote' || t.type === 'replace';
  signer ??= signingKey(set);
  if (!signer || (!changedSigner && !ctx.request)) return { set };
  const trigger: Trigger = t.type === 'bootstrap' ? 'bootstrap' : 'trigger' in t ? t.trigger : 'emergency';
  const compromised =
    (t.type === 'promote' || t.type === 'replace') ? t.compromisedKid !== undefined : t.type === 'retire' && t.compromised;
  const record: RolloverRecord = {
    id: rolloverRecordId(set.version, signer.kid),
    type: 'rollover',
    issuer: set.issuer,
    at,
    trigger,
    requestedBy: ctx.request?.requestedBy ?? 'keyturn',
    requestedByVerified: ctx.request?.requestedByVerified ?? true,
    reason: ctx.request?.reason ?? defaultReason[trigger],
    compromised,
    ...(changedSigner && oldCurrent ? { fromKid: oldCurrent.kid } : {}),
    toKid: signer.kid,
    nextKid: keysIn(set, 'next')[0]?.kid,
    retiredKids,
    keySetVersion: set.version,
  };
  return { set: { ...set, outbox: [...(set.outbox ?? []), record] }, record };
}

const defaultReason: Record<Trigger, string> = {
  bootstrap: 'first signing key',
  schedule: 'scheduled rollover',
  expiry: 'signing key near expiry',
  emergency: 'emergency rollover',
  policy: 'key below the key policy minimum',
};

/** Deterministic per transition (a retried store collides) and sorts by key-set version. */
export const rolloverRecordId = (version: number, kid: string): string =>
  `rollover-${String(version).padStart(8, '0')}-${kid.slice(0, 16)}`;

/** Keeps every retired key whose vault copy is not yet disabled, plus the last few. */
export function trimRetired(keys: SigningKey[]): SigningKey[] {
  const retired = keys.filter((k) => k.state === 'retired' && k.vaultState === 'retired');
  const drop = new Set(retired.slice(0, Math.max(0, retired.length - RETIRED_KEPT)).map((k) => k.kid));
  return keys.filter((k) => !drop.has(k.kid));
}
