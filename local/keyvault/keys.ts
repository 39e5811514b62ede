/** Key operations: create, import, read, update, rotation and its policy, cryptography; the shared ones are in `versioned.ts`. */
import {
  applyAttributes,
  assertWritable,
  attributesOut,
  b64,
  body,
  findVersion,
  live,
  newAttributes,
  newVersionId,
  parseTags,
  type VaultContext,
  type VaultRequest,
  type VaultResponse,
  type Shown,
} from './common';
import { latest, type VersionedKind } from './versioned';
import { cipher } from './cipher';
import { baseKty, generateKey, generateKeySync, importJwk, keygenParams, publicFields, type StoredJwk } from './jwk';
import { sign, verify } from './signature';
import { addDuration, isPositive, parseDuration } from './duration';
import { badParameter, forbidden, notImplemented } from './errors';
import { NEAR_EXPIRY_DEFAULT } from './events';
import type { KeyEntry, KeyVersion, LifetimeAction, RotationPolicy } from './store';

const ALL_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'];

function defaultOps(kty: StoredJwk['kty']): string[] {
  if (kty === 'RSA') return ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
  if (kty === 'EC') return ['sign', 'verify'];
  return ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'];
}

function parseOps(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.some((o) => typeof o !== 'string' || !ALL_OPS.includes(o))) {
    throw badParameter(`key_ops must be a list of: ${ALL_OPS.join(', ')}.`);
  }
  return [...new Set(raw as string[])];
}

const kid = (base: string, entry: KeyEntry, v: KeyVersion): string => `${base}/keys/${entry.name}/${v.version}`;

export function keyBundle(at: Shown, entry: KeyEntry, v: KeyVersion): Record<string, unknown> {
  return {
    key: { kid: kid(at.baseUrl, entry, v), kty: v.kty, key_ops: v.keyOps, ...publicFields(v.jwk) },
    attributes: attributesOut(v.attributes, at.recoveryLevel, { exportable: false }),
    ...(v.tags ? { tags: v.tags } : {}),
  };
}

function keyItem(at: Shown, entry: KeyEntry, v: KeyVersion, withVersion: boolean): Record<string, unknown> {
  return {
    kid: withVersion ? kid(at.baseUrl, entry, v) : `${at.baseUrl}/keys/${entry.name}`,
    attributes: attributesOut(v.attributes, at.recoveryLevel, { exportable: false }),
    ...(v.tags ? { tags: v.tags } : {}),
  };
}

/** Adds a version under `name` (creating the entry) and announces it. */
function addVersion(ctx: VaultContext, name: string, v: KeyVersion): KeyEntry {
  const map = ctx.store.state.keys;
  const key = name.toLowerCase();
  const existing = map[key];
  assertWritable(existing, 'Key', name);
  const entry = existing ?? { name, versions: [] };
  entry.versions.push(v);
  map[key] = entry;
  ctx.newVersion('Key', entry.name, v.version, v.attributes);
  return entry;
}

async function create(ctx: VaultContext, name: string, req: VaultRequest): Promise<VaultResponse> {
  const b = body(req);
  if (b.kty === undefined) throw badParameter('The kty field is required.');
  const kty = baseKty(b.kty);
  if (!kty) throw badParameter(`Unsupported kty '${String(b.kty)}'.`);
  const num = (f: string): number | undefined => {
    const v = b[f];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw badParameter(`${f} must be a number.`);
    return v;
  };
  if (b.crv !== undefined && b.crv !== null && typeof b.crv !== 'string') throw badParameter('crv must be a string.');
  const keyOps = parseOps(b.key_ops) ?? defaultOps(kty);
  const tags = parseTags(b.tags);
  newAttributes(b.attributes, 0); // validate before the (slow) generation
  assertWritable(ctx.store.state.keys[name.toLowerCase()], 'Key', name);
  const jwk = await generateKey(kty, { keySize: num('key_size'), publicExponent: num('public_exponent'), crv: (b.crv as string | undefined) ?? undefined });
  return storeNewVersion(ctx, name, req, { kty: String(b.kty), jwk, keyOps, attributes: b.attributes, tags });
}

export function importKey(ctx: VaultContext, name: string, req: VaultRequest): VaultResponse {
  const b = body(req);
  const raw = b.key as Record<string, unknown> | undefined;
  const jwk = importJwk(raw);
  const hsm = b.Hsm === true || (typeof raw?.kty === 'string' && raw.kty.endsWith('-HSM'));
  const keyOps = parseOps(raw?.key_ops) ?? defaultOps(jwk.kty);
  const tags = parseTags(b.tags);
  return storeNewVersion(ctx, name, req, { kty: hsm ? `${jwk.kty}-HSM` : jwk.kty, jwk, keyOps, attributes: b.attributes, tags });
}

/** A created or imported key: a new version with fresh attributes, answered as a KeyBundle. */
function storeNewVersion(
  ctx: VaultContext,
  name: string,
  req: VaultRequest,
  fields: { kty: string; jwk: KeyVersion['jwk']; keyOps: KeyVersion['keyOps']; attributes: unknown; tags: KeyVersion['tags'] | undefined },
): VaultResponse {
  const v: KeyVersion = {
    version: newVersionId(),
    kty: fields.kty,
    jwk: fields.jwk,
    keyOps: fields.keyOps,
    attributes: newAttributes(fields.attributes, ctx.clock.nowSeconds()),
    ...(fields.tags ? { tags: fields.tags } : {}),
  };
  const entry = addVersion(ctx, name, v);
  return { status: 200, body: keyBundle(req, entry, v) };
}

function update(ctx: VaultContext, name: string, version: string | undefined, req: VaultRequest): VaultResponse {
  const entry = live(ctx.store.state.keys, 'Key', name);
  const v = findVersion(entry.versions, version, 'Key', name);
  const b = body(req);
  const ops = parseOps(b.key_ops);
  const tags = parseTags(b.tags);
  if (b.release_policy !== undefined && b.release_policy !== null) throw notImplemented('update key release_policy');
  applyAttributes(v.attributes, b.attributes, ctx.clock.nowSeconds());
  if (ops) v.keyOps = ops;
  if (tags) v.tags = tags;
  return { status: 200, body: keyBundle(req, entry, v) };
}

/** A new version of the same kind; exp from the policy's expiryTime. */
export function rotateEntry(ctx: VaultContext, entry: KeyEntry): KeyVersion {
  const prev = latest(entry);
  const now = ctx.clock.now();
  const expiry = entry.policy?.expiryTime ? parseDuration(entry.policy.expiryTime) : undefined;
  const jwk = generateKeySync(prev.jwk.kty, keygenParams(prev.jwk));
  const seconds = Math.floor(now.getTime() / 1000);
  const v: KeyVersion = {
    version: newVersionId(),
    kty: prev.kty,
    jwk,
    keyOps: [...prev.keyOps],
    attributes: {
      enabled: true,
      ...(expiry ? { exp: Math.floor(addDuration(now, expiry).getTime() / 1000) } : {}),
      created: seconds,
      updated: seconds,
    },
    ...(prev.tags ? { tags: { ...prev.tags } } : {}),
  };
  addVersion(ctx, entry.name, v);
  return v;
}

// ---------------------------------------------------------------- rotation policy

function policyOut(base: string, entry: KeyEntry): Record<string, unknown> {
  const id = `${base}/keys/${entry.name}/rotationpolicy`;
  const p = entry.policy;
  if (!p) {
    return { id, lifetimeActions: [{ trigger: { timeBeforeExpiry: NEAR_EXPIRY_DEFAULT }, action: { type: 'Notify' } }], attributes: {} };
  }
  return {
    id,
    lifetimeActions: p.lifetimeActions,
    attributes: { ...(p.expiryTime ? { expiryTime: p.expiryTime } : {}), created: p.created, updated: p.updated },
  };
}

function duration(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badParameter(`${field} must be an ISO 8601 duration.`);
  const d = parseDuration(v);
  if (!d || !isPositive(d)) throw badParameter(`${field} '${v}' is not a positive ISO 8601 duration.`);
  return v;
}

function putPolicy(ctx: VaultContext, name: string, req: VaultRequest): VaultResponse {
  const entry = live(ctx.store.state.keys, 'Key', name);
  const b = body(req);
  const rawActions = b.lifetimeActions ?? [];
  if (!Array.isArray(rawActions)) throw badParameter('lifetimeActions must be a list.');
  const actions: LifetimeAction[] = rawActions.map((raw, i) => {
    const a = (raw ?? {}) as { trigger?: Record<string, unknown>; action?: { type?: unknown } };
    const type = typeof a.action?.type === 'string' ? a.action.type.toLowerCase() : '';
    if (type !== 'rotate' && type !== 'notify') throw badParameter(`lifetimeActions[${i}].action.type must be Rotate or Notify.`);
    const timeAfterCreate = duration(a.trigger?.timeAfterCreate, `lifetimeActions[${i}].trigger.timeAfterCreate`);
    const timeBeforeExpiry = duration(a.trigger?.timeBeforeExpiry, `lifetimeActions[${i}].trigger.timeBeforeExpiry`);
    if (Boolean(timeAfterCreate) === Boolean(timeBeforeExpiry)) {
      throw badParameter(`lifetimeActions[${i}].trigger needs exactly one of timeAfterCreate and timeBeforeExpiry.`);
    }
    return {
      trigger: timeAfterCreate ? { timeAfterCreate } : { timeBeforeExpiry: timeBeforeExpiry as string },
      action: { type: type === 'rotate' ? 'Rotate' : 'Notify' },
    };
  });
  for (const t of ['Rotate', 'Notify']) {
    if (actions.filter((a) => a.action.type === t).length > 1) throw badParameter(`At most one ${t} action is allowed.`);
  }
  // The service adds the default notification when only a Rotate action is given.
  if (!actions.some((a) => a.action.type === 'Notify')) {
    actions.push({ trigger: { timeBeforeExpiry: NEAR_EXPIRY_DEFAULT }, action: { type: 'Notify' } });
  }
  const attrs = (b.attributes ?? {}) as Record<string, unknown>;
  const expiryTime = duration(attrs.expiryTime, 'attributes.expiryTime');
  const now = ctx.clock.nowSeconds();
  const policy: RotationPolicy = {
    lifetimeActions: actions,
    ...(expiryTime ? { expiryTime } : {}),
    created: entry.policy?.created ?? now,
    updated: now,
  };
  entry.policy = policy;
  return { status: 200, body: policyOut(req.baseUrl, entry) };
}

// ---------------------------------------------------------------- cryptography

/** Keyed by a path segment: a Map, so `constructor` is not an operation. */
export const CRYPTO_OPS: ReadonlyMap<string, string> = new Map([
  ['sign', 'sign'],
  ['verify', 'verify'],
  ['encrypt', 'encrypt'],
  ['decrypt', 'decrypt'],
  ['wrapkey', 'wrapKey'],
  ['unwrapkey', 'unwrapKey'],
]);

export function cryptoOp(ctx: VaultContext, name: string, version: string | undefined, opSegment: string, req: VaultRequest): VaultResponse {
  const op = CRYPTO_OPS.get(opSegment.toLowerCase()) as string;
  const entry = live(ctx.store.state.keys, 'Key', name);
  const v = findVersion(entry.versions, version, 'Key', name);
  const a = v.attributes;
  const now = ctx.clock.nowSeconds();
  if (!a.enabled) throw forbidden(`Operation ${op} is not allowed on a disabled key.`, 'KeyDisabled');
  if (a.nbf !== undefined && now < a.nbf) throw forbidden(`Operation ${op} is not allowed on a key that is not yet valid.`, 'KeyNotYetValid');
  if (a.exp !== undefined && now >= a.exp) throw forbidden(`Operation ${op} is not allowed on an expired key.`, 'KeyExpired');
  if (!v.keyOps.includes(op)) throw forbidden(`Operation ${op} is not permitted on this key (key_ops).`, 'KeyOperationForbidden');
  const b = body(req);
  if (typeof b.alg !== 'string' || !b.alg) throw badParameter('The alg field is required.');
  const alg = b.alg;
  const id = kid(req.baseUrl, entry, v);
  if (op === 'sign') {
    return { status: 200, body: { kid: id, value: sign(v.jwk, alg, b64(b.value, 'value') as Buffer).toString('base64url') } };
  }
  if (op === 'verify') {
    const ok = verify(v.jwk, alg, b64(b.digest, 'digest') as Buffer, b64(b.value, 'value') as Buffer);
    return { status: 200, body: { value: ok } };
  }
  const encrypt = op === 'encrypt' || op === 'wrapKey';
  const out = cipher(
    v.jwk,
    alg,
    {
      value: b64(b.value, 'value') as Buffer,
      ...(b.iv ? { iv: b64(b.iv, 'iv') } : {}),
      ...(b.aad ? { aad: b64(b.aad, 'aad') } : {}),
      ...(b.tag ? { tag: b64(b.tag, 'tag') } : {}),
    },
    encrypt,
    op === 'wrapKey' || op === 'unwrapKey',
  );
  return {
    status: 200,
    body: {
      kid: id,
      value: out.value.toString('base64url'),
      ...(out.iv ? { iv: out.iv.toString('base64url') } : {}),
      ...(out.tag ? { tag: out.tag.toString('base64url') } : {}),
      ...(out.aad ? { aad: out.aad.toString('base64url') } : {}),
    },
  };
}

// ---------------------------------------------------------------- the kind, and reads

/** Keys as versioned objects (`versioned.ts`): list, versions, delete, recover, purge, backup, restore. */
export const KEYS: VersionedKind<KeyEntry> = {
  kind: 'Key',
  collection: 'keys',
  deletedCollection: 'deletedkeys',
  entries: (ctx) => ctx.store.state.keys,
  bundle: keyBundle,
  item: keyItem,
  backupOf: (entry) => ({ name: entry.name, versions: entry.versions, policy: entry.policy }),
  restored: (entry) => ({ name: entry.name, versions: entry.versions, ...(entry.policy ? { policy: entry.policy } : {}) }),
};

/** Without a version, the latest. */
export function getKey(ctx: VaultContext, req: VaultRequest, name: string, version: string | undefined): VaultResponse {
  const entry = live(ctx.store.state.keys, 'Key', name);
  return { status: 200, body: keyBundle(req, entry, findVersion(entry.versions, version, 'Key', name)) };
}

export function rotateKey(ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  const entry = live(ctx.store.state.keys, 'Key', name);
  return { status: 200, body: keyBundle(req, entry, rotateEntry(ctx, entry)) };
}

export function getRotationPolicy(ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  return { status: 200, body: policyOut(req.baseUrl, live(ctx.store.state.keys, 'Key', name)) };
}

export { create as createKey, update as updateKey, putPolicy as putRotationPolicy };
