/**
 * The credential rotation state machine, as pure functions over plain data (no I/O,
 * no SDKs). A rotation document is what Cosmos DB stores; the service reads it, asks
 * `decideNext` what to do, and writes the result of a transition back under the
 * document's ETag.
 *
 *   create → verify → promote → notify → (grace) → retire → completed
 *   any step, after maxAttempts failures → failed (the old credential stays current)
 *
 * Every step is claimed (a lease with a fresh token) before its side effect; what
 * the side effect creates carries the token, so a resumed step finds and adopts it.
 * No field here ever holds a secret value.
 */
import type { ProviderKind } from './managedCredential';

export const STEPS = ['create', 'verify', 'promote', 'notify', 'retire'] as const;
export type Step = (typeof STEPS)[number];
export type RotationStatus = 'active' | 'completed' | 'failed' | 'superseded';
export type Trigger = 'SecretNearExpiry' | 'SecretExpired' | 'sweep' | 'renew';
/** What a reader sees: the step, `grace` while waiting to retire, or the end status. */
export type RotationState = Step | 'grace' | 'completed' | 'failed' | 'superseded';

export interface StepRecord {
  /** Every claim's token, oldest first; artifacts tagged with any of them belong to this step. */
  tokens: string[];
  startedAt: string;
  completedAt?: string;
  failures: number;
  /** Token carried by the artifact that was recorded (may be an earlier claim's). */
  adoptedToken?: string;
}

export interface Lease {
  step: Step;
  owner: string;
  token: string;
  expiresAt: string;
}

/** What a failed attempt left behind, cleaned by the next attempt before it creates anything. */
export interface Leftovers {
  fromRotation: string;
  tokens: string[];
  pendingVersion?: string;
  credentialRef?: string;
}

export interface Rotation {
  id: string;
  /** Partition key: `{vaultKey}:{lower(name)}`. */
  credentialId: string;
  vault: string;
  name: string;
  fromVersion: string;
  attempt: number;
  provider: ProviderKind;
  validityDays: number;
  graceDays: number;
  appObjectId?: string;
  /** The provider's id of the credential being replaced (retired after grace). */
  previousCredentialRef?: string;
  trigger: Trigger;
  status: RotationStatus;
  step: Step;
  steps: Partial<Record<Step, StepRecord>>;
  lease?: Lease;
  /** The unverified value's home: a version of `{name}--pending`. */
  pending?: { version: string; credentialRef?: string; expiresOn: string };
  verifiedAt?: string;
  promoted?: { version: string; expiresOn: string };
  notifiedAt?: string;
  retireAfter?: string;
  nextAttemptAt?: string;
  /** When the resume timer should next look at it (lease expiry, backoff, grace end). */
  dueAt?: string;
  lastError?: { step: Step; message: string; at: string };
  leftovers?: Leftovers;
  outcome?: string;
  alerts?: { lastAt: string; count: number };
  createdAt: string;
  updatedAt: string;
  endedAt?: string;
}

export type Decision =
  | { action: 'none'; reason: Exclude<RotationStatus, 'active'> }
  | { action: 'wait'; until: string; reason: 'leased' | 'grace' | 'backoff' }
  | { action: 'claim'; step: Step }
  | { action: 'perform'; step: Step; token: string };

export type StepResult =
  | { step: 'create'; pendingVersion: string; credentialRef?: string; expiresOn: string; token: string }
  | { step: 'verify' }
  | { step: 'promote'; version: string; expiresOn: string; token: string }
  | { step: 'notify' }
  | { step: 'retire' };

export class RotationStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RotationStateError';
  }
}

export const credentialKey = (vault: string, name: string): string => `${vault.toLowerCase()}:${name.toLowerCase()}`;

/** Deterministic: one rotation per (vault, secret, version, attempt), however events arrive. */
export const rotationId = (vault: string, name: string, version: string, attempt: number): string =>
  `${credentialKey(vault, name)}:${version.toLowerCase()}:${attempt}`;

export const ROTATION_ID = /^([0-9a-z-]{1,127}):([0-9a-z-]{1,127}):([0-9a-z]{1,64}):([1-9]\d{0,3})$/;

const iso = (d: Date): string => d.toISOString();
const plus = (d: Date, ms: number): Date => new Date(d.getTime() + ms);
export const DAY_MS = 86_400_000;

const nextStep = (step: Step): Step | undefined => STEPS[STEPS.indexOf(step) + 1];

export type NewRotation = Pick<
  Rotation,
  'vault' | 'name' | 'fromVersion' | 'provider' | 'validityDays' | 'graceDays' | 'appObjectId' | 'previousCredentialRef' | 'trigger' | 'leftovers'
> & { attempt?: number };

export function startRotation(input: NewRotation, now: Date): Rotation {
  const attempt = input.attempt ?? 1;
  const r: Rotation = {
    id: rotationId(input.vault, input.name, input.fromVersion, attempt),
    credentialId: credentialKey(input.vault, input.name),
    vault: input.vault.toLowerCase(),
    name: input.name,
    fromVersion: input.fromVersion.toLowerCase(),
    attempt,
    provider: input.provider,
    validityDays: input.validityDays,
    graceDays: input.graceDays,
    trigger: input.trigger,
    status: 'active',
    step: 'create',
    steps: {},
    createdAt: iso(now),
    updatedAt: iso(now),
    dueAt: iso(now),
  };
  if (input.appObjectId) r.appObjectId = input.appObjectId;
  if (input.previousCredentialRef) r.previousCredentialRef = input.previousCredentialRef;
  if (input.leftovers) r.leftovers = input.leftovers;
  return r;
}

/** What a worker (`owner`) should do with this rotation now. */
export function decideNext(r: Rotation, now: Date, facts: { owner: string }): Decision {
  if (r.status !== 'active') return { action: 'none', reason: r.status };
  const t = now.getTime();
  const lease = r.lease;
  if (lease && lease.step === r.step && Date.parse(lease.expiresAt) > t) {
    return lease.owner === facts.owner
      ? { action: 'perform', step: r.step, token: lease.token }
      : { action: 'wait', until: lease.expiresAt, reason: 'leased' };
  }
  if (r.step === 'retire' && r.retireAfter && Date.parse(r.retireAfter) > t) {
    return { action: 'wait', until: r.retireAfter, reason: 'grace' };
  }
  if (r.nextAttemptAt && Date.parse(r.nextAttemptAt) > t) {
    return { action: 'wait', until: r.nextAttemptAt, reason: 'backoff' };
  }
  return { action: 'claim', step: r.step };
}

function touched(r: Rotation, now: Date): Rotation {
  const next = { ...r, updatedAt: iso(now) };
  const d = decideNext(next, now, { owner: '' });
  if (d.action === 'none') delete next.dueAt;
  else next.dueAt = d.action === 'wait' ? d.until : iso(now);
  return next;
}

/** Takes the lease on the current step with a fresh token (the caller writes it under the ETag). */
export function claimStep(r: Rotation, claim: { owner: string; token: string; leaseMs: number }, now: Date): Rotation {
  const d = decideNext(r, now, { owner: claim.owner });
  if (d.action !== 'claim') throw new RotationStateError(`Rotation ${r.id}: cannot claim ${r.step} (${d.action})`);
  const previous = r.steps[r.step];
  const record: StepRecord = previous
    ? { ...previous, tokens: [...previous.tokens, claim.token] }
    : { tokens: [claim.token], startedAt: iso(now), failures: 0 };
  return touched(
    {
      ...r,
      steps: { ...r.steps, [r.step]: record },
      lease: { step: r.step, owner: claim.owner, token: claim.token, expiresAt: iso(plus(now, claim.leaseMs)) },
    },
    now,
  );
}

function requireLease(r: Rotation, step: Step, token: string): StepRecord {
  if (r.status !== 'active' || r.step !== step || r.lease?.step !== step || r.lease.token !== token) {
    throw new RotationStateError(`Rotation ${r.id}: step ${step} is not held with this token`);
  }
  return r.steps[step]!;
}

/** Records a step's outcome and moves to the next step. Enforces the ordering invariants. */
export function completeStep(r: Rotation, token: string, result: StepResult, now: Date): Rotation {
  const record = requireLease(r, result.step, token);
  const next: Rotation = { ...r };
  const done: StepRecord = { ...record, completedAt: iso(now) };
  switch (result.step) {
    case 'create':
      next.pending = {
        version: result.pendingVersion,
        expiresOn: result.expiresOn,
        ...(result.credentialRef ? { credentialRef: result.credentialRef } : {}),
      };
      done.adoptedToken = result.token;
      break;
    case 'verify':
      if (!r.pending) throw new RotationStateError(`Rotation ${r.id}: nothing to verify`);
      next.verifiedAt = iso(now);
      break;
    case 'promote':
      if (!r.verifiedAt) throw new RotationStateError(`Rotation ${r.id}: cannot promote an unverified value`);
      next.promoted = { version: result.version.toLowerCase(), expiresOn: result.expiresOn };
      done.adoptedToken = result.token;
      break;
    case 'notify':
      if (!r.promoted) throw new RotationStateError(`Rotation ${r.id}: nothing promoted to announce`);
      next.notifiedAt = iso(now);
      next.retireAfter = iso(plus(now, r.graceDays * DAY_MS));
      break;
    case 'retire':
      if (!r.notifiedAt || !r.retireAfter || Date.parse(r.retireAfter) > now.getTime()) {
        throw new RotationStateError(`Rotation ${r.id}: cannot retire before the grace period has passed`);
      }
      break;
  }
  next.steps = { ...r.steps, [result.step]: done };
  delete next.lease;
  delete next.nextAttemptAt;
  const following = nextStep(result.step);
  if (following) next.step = following;
  else {
    next.status = 'completed';
    next.endedAt = iso(now);
  }
  return touched(next, now);
}

/** Exponential backoff with jitter: 30 s, 1 min, 2 min … capped at 30 min, each × [0.5, 1). */
export function backoffMs(failures: number, jitter: number): number {
  const base = Math.min(30_000 * 2 ** Math.max(0, failures - 1), 30 * 60_000);
  return Math.round(base * (0.5 + Math.min(Math.max(jitter, 0), 0.999) / 2));
}

/** Records a failed try of the held step; after maxAttempts failures the rotation is failed. */
export function failStep(
  r: Rotation,
  token: string,
  message: string,
  now: Date,
  policy: { maxAttempts: number; jitter: number },
): Rotation {
  const record = requireLease(r, r.step, token);
  const failures = record.failures + 1;
  const next: Rotation = {
    ...r,
    steps: { ...r.steps, [r.step]: { ...record, failures } },
    lastError: { step: r.step, message: message.slice(0, 500), at: iso(now) },
  };
  delete next.lease;
  if (failures >= policy.maxAttempts) {
    next.status = 'failed';
    next.endedAt = iso(now);
    delete next.nextAttemptAt;
  } else {
    next.nextAttemptAt = iso(plus(now, backoffMs(failures, policy.jitter)));
  }
  return touched(next, now);
}

/** The version being replaced is no longer current (someone else rotated it): stop. */
export function supersede(r: Rotation, token: string, reason: string, now: Date): Rotation {
  requireLease(r, r.step, token);
  if (r.promoted) throw new RotationStateError(`Rotation ${r.id}: already promoted, cannot be superseded`);
  const next: Rotation = { ...r, status: 'superseded', outcome: reason.slice(0, 300), endedAt: iso(now) };
  delete next.lease;
  return touched(next, now);
}

/** The next attempt after a failed one: same version, attempt + 1, with what to clean up. */
export function nextAttempt(failed: Rotation, trigger: Trigger, now: Date): Rotation {
  if (failed.status !== 'failed') throw new RotationStateError(`Rotation ${failed.id} has not failed`);
  if (failed.promoted) throw new RotationStateError(`Rotation ${failed.id} already promoted its value`);
  const leftovers: Leftovers = { fromRotation: failed.id, tokens: failed.steps.create?.tokens ?? [] };
  if (failed.pending) {
    leftovers.pendingVersion = failed.pending.version;
    if (failed.pending.credentialRef) leftovers.credentialRef = failed.pending.credentialRef;
  }
  const { vault, name, fromVersion, provider, validityDays, graceDays, appObjectId, previousCredentialRef } = failed;
  return startRotation(
    { vault, name, fromVersion, provider, validityDays, graceDays, appObjectId, previousCredentialRef, trigger, leftovers, attempt: failed.attempt + 1 },
    now,
  );
}

/** Started and not yet announced: a second renewal of the same credential must wait. */
export const isInFlight = (r: Rotation): boolean => r.status === 'active' && r.step !== 'retire';

export function stateOf(r: Rotation, now: Date): RotationState {
  if (r.status !== 'active') return r.status;
  if (r.step === 'retire' && r.retireAfter && Date.parse(r.retireAfter) > now.getTime()) return 'grace';
  return r.step;
}

/**
 * A failed rotation is re-alerted once a day until the credential is renewed or
 * expires; once expired, one last alert says so.
 */
export function alertDue(r: Rotation, now: Date, credentialExpiresOn?: Date): boolean {
  if (r.status !== 'failed') return false;
  const last = Date.parse(r.alerts?.lastAt ?? r.endedAt ?? r.updatedAt);
  if (credentialExpiresOn && now.getTime() >= credentialExpiresOn.getTime()) return last < credentialExpiresOn.getTime();
  return now.getTime() - last >= DAY_MS;
}

export function markAlerted(r: Rotation, now: Date): Rotation {
  return { ...r, alerts: { lastAt: iso(now), count: (r.alerts?.count ?? 0) + 1 }, updatedAt: iso(now) };
}

/** The invariants a stored rotation must satisfy; empty when it does. */
export function invariantViolations(r: Rotation): string[] {
  const v: string[] = [];
  if (r.id !== rotationId(r.vault, r.name, r.fromVersion, r.attempt)) v.push('id is not derived from vault, name, version and attempt');
  if (r.verifiedAt && !r.steps.create?.completedAt) v.push('verified before created');
  if (r.promoted && !r.verifiedAt) v.push('promoted an unverified value');
  if (r.notifiedAt && !r.promoted) v.push('announced before promoted');
  const retired = r.steps.retire?.completedAt;
  if (retired && (!r.notifiedAt || !r.retireAfter || Date.parse(retired) < Date.parse(r.retireAfter))) {
    v.push('retired the old credential before it was announced and the grace period passed');
  }
  if (r.status === 'completed' && !retired) v.push('completed without retiring');
  if (r.lease && r.status !== 'active') v.push('a finished rotation holds a lease');
  if (r.status === 'superseded' && r.promoted) v.push('superseded after promotion');
  return v;
}

/** The public view (HTTP): no lease internals, never a value (there is none to leak). */
export function rotationView(r: Rotation, now: Date) {
  return {
    id: r.id,
    vault: r.vault,
    name: r.name,
    fromVersion: r.fromVersion,
    attempt: r.attempt,
    provider: r.provider,
    trigger: r.trigger,
    state: stateOf(r, now),
    status: r.status,
    steps: Object.fromEntries(
      STEPS.filter((s) => r.steps[s]).map((s) => {
        const rec = r.steps[s]!;
        return [s, { startedAt: rec.startedAt, completedAt: rec.completedAt ?? null, tries: rec.tokens.length, failures: rec.failures }];
      }),
    ),
    newVersion: r.promoted?.version ?? null,
    newExpiresOn: r.promoted?.expiresOn ?? null,
    retireAfter: r.retireAfter ?? null,
    nextAttemptAt: r.nextAttemptAt ?? null,
    lastError: r.lastError ?? null,
    outcome: r.outcome ?? null,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}
