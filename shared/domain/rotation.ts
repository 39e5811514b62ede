/**
 * The credential rotation state machine, as pure functions over plain data (no I/O,
 * no SDKs). A rotation document is what Cosmos DB stores; the service reads it, asks
 * `decideNext` what to do, and writes the result of a transition back under the
 * document's ETag.
 *
 *   create → verify → promote → notify → (grace) → retire → completed
 *   create, verify or promote, after maxAttempts failures → failed (nothing was promoted:
 *     the old credential stays current; what the attempt created is cleaned up)
 *   notify or retire fail → retried with capped backoff for as long as it takes (the new
 *     value is already current, so the rotation can only go forward), with alerts
 *
 * Every step is claimed (a lease with a fresh token and a holder unique to one
 * `advance` call) before its side effect; what the side effect creates carries the
 * token, so a resumed step finds and adopts it. No field here ever holds a secret
 * value, nor an error's text (only its name, code and status).
 */
import type { ProviderKind } from './managedCredential';
import { type Cleanup, type Decision as KernelDecision, type Lease as KernelLease, type StepRecord, backoffMs, stepKernel } from './stepKernel';

export { backoffMs };

export const STEPS = ['create', 'verify', 'promote', 'notify', 'retire'] as const;
export type Step = (typeof STEPS)[number];
export type RotationStatus = 'active' | 'completed' | 'failed' | 'superseded';
export type Trigger = 'SecretNearExpiry' | 'SecretExpired' | 'sweep' | 'renew';
/** What a reader sees: the step, `grace` while waiting to retire, or the end status. */
export type RotationState = Step | 'grace' | 'completed' | 'failed' | 'superseded';

export type { StepRecord, Cleanup } from './stepKernel';
export type Lease = KernelLease<Step>;

/**
 * What is safe to keep about a failure: no message text (SDK and identity messages can
 * carry URLs, ids or request bodies), only its facts and a fixed per-step message.
 */
export type { ErrorFacts } from '../errors';
import { type ErrorFacts, KeyturnError } from '../errors';

export interface RotationError extends Omit<ErrorFacts, 'kind'> {
  /** Absent on rotations recorded before failures were classified. */
  kind?: ErrorFacts['kind'];
  step: Step;
  /** Fixed per step (STEP_FAILURE); never the error's own text. */
  message: string;
  at: string;
}

export const STEP_FAILURE: Record<Step, string> = {
  create: 'create failed: the new credential could not be created or stored in the pending secret',
  verify: 'verify failed: the new credential could not be confirmed at its provider (not found on the application, or not a valid key)',
  promote: 'promote failed: the verified value could not be written as the new version of the secret',
  notify: 'notify failed: Keyturn.CredentialRotated could not be published',
  retire: 'retire failed: the old credential could not be removed or disabled; it stays enabled',
};

/** What a failed attempt left behind, cleaned by the next attempt before it creates anything. */
export interface Leftovers {
  fromRotation: string;
  tokens: string[];
  pendingVersion?: string;
  credentialRef?: string;
  /**
   * Where the failed attempt created them: its provider and application. The next
   * attempt takes both from the current tags (an operator may have fixed them), so
   * leftovers are removed against the app they were made on, not the new one.
   */
  provider?: ProviderKind;
  appObjectId?: string;
}

export interface Rotation {
  id: string;
  /** Partition key: `{vaultAlias}:{lower(name)}` (`credentialKey`). */
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
  /**
   * `tidied`: promotion's clean-up (previous tagged, duplicates and the pending copy
   * disabled) finished within the promote step; when not, notify finishes it first.
   */
  promoted?: { version: string; expiresOn: string; tidied?: boolean };
  notifiedAt?: string;
  retireAfter?: string;
  nextAttemptAt?: string;
  /** When the resume timer should next look at it (lease expiry, backoff, grace end). */
  dueAt?: string;
  lastError?: RotationError;
  leftovers?: Leftovers;
  /** Set when the rotation failed or was superseded: its artifacts were (or are to be) removed. */
  cleanup?: Cleanup;
  outcome?: string;
  /** `step`: the step a post-promotion alert was about (a new stuck step alerts at once). */
  alerts?: { lastAt: string; count: number; step?: Step };
  createdAt: string;
  updatedAt: string;
  endedAt?: string;
}

export type Decision = KernelDecision<Step, Exclude<RotationStatus, 'active'>, 'grace'>;

export type StepResult =
  | { step: 'create'; pendingVersion: string; credentialRef?: string; expiresOn: string; token: string }
  | { step: 'verify' }
  | { step: 'promote'; version: string; expiresOn: string; token: string; tidied?: boolean }
  | { step: 'notify' }
  | { step: 'retire' };

export class RotationStateError extends KeyturnError {
  constructor(message: string) {
    super('INVALID_TRANSITION', message);
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

/** The partition key of a rotation id: `{vault}:{name}:{version}:{attempt}` → `{vault}:{name}`. */
export function credentialKeyOf(id: string): string | undefined {
  const m = ROTATION_ID.exec(id);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** Renewal on the step kernel: the grace period before retire is its own wait. */
const kernel = stepKernel<Rotation, Step, Exclude<RotationStatus, 'active'>, 'grace'>({
  steps: STEPS,
  label: 'Rotation',
  refuse: (message) => new RotationStateError(message),
  hold: (r) => (r.step === 'retire' && r.retireAfter ? { until: r.retireAfter, reason: 'grace' } : undefined),
});

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

/**
 * What a worker should do with this rotation now. `owner` is the lease holder of one
 * `advance` call (unique per call, never just per process): two calls in one process
 * must never both perform a step under the same token.
 */
export function decideNext(r: Rotation, now: Date, facts: { owner: string }): Decision {
  return kernel.decide(r, now, facts.owner);
}

/** Takes the lease on the current step with a fresh token (the caller writes it under the ETag). */
export function claimStep(r: Rotation, claim: { owner: string; token: string; leaseMs: number }, now: Date): Rotation {
  return kernel.claim(r, claim, now);
}

/** Records a step's outcome and moves to the next step. Enforces the ordering invariants. */
export function completeStep(r: Rotation, token: string, result: StepResult, now: Date): Rotation {
  const record = kernel.requireLease(r, result.step, token);
  const next: Rotation = { ...r };
  const done: StepRecord = { ...record };
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
      next.promoted = { version: result.version.toLowerCase(), expiresOn: result.expiresOn, ...(result.tidied ? { tidied: true } : {}) };
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
  return kernel.complete(next, result.step, done, now);
}

/** Once promoted the new value is what consumers read: the rotation can only go forward. */
export const pastPromotion = (r: Rotation): boolean => r.promoted !== undefined;

/**
 * Records a failed try of the held step. Before promotion, maxAttempts failures make
 * the rotation failed; after it (notify, retire) it never fails, it keeps retrying
 * with capped backoff (`stuckAlertDue` says when to alert).
 */
export function failStep(
  r: Rotation,
  token: string,
  /** `kind` may be absent (facts recorded before failures were classified). */
  error: Omit<ErrorFacts, 'kind'> & { kind?: ErrorFacts['kind'] },
  now: Date,
  policy: { maxAttempts: number; jitter: number },
): Rotation {
  const next = kernel.fail(r, token, now, { ...policy, mayFail: !pastPromotion(r) });
  next.lastError = {
    step: r.step,
    message: STEP_FAILURE[r.step],
    name: error.name,
    ...(error.code !== undefined ? { code: error.code } : {}),
    ...(error.statusCode !== undefined ? { statusCode: error.statusCode } : {}),
    ...(error.kind !== undefined ? { kind: error.kind } : {}),
    at: iso(now),
  };
  return next;
}

/**
 * Records the clean-up of a failed or superseded rotation (run before the status is
 * written). One that did not finish is retried by the resume timer with backoff.
 */
export function recordCleanup(r: Rotation, ok: boolean, now: Date, jitter: number): Rotation {
  if (r.status !== 'failed' && r.status !== 'superseded') throw new RotationStateError(`Rotation ${r.id}: only a failed or superseded rotation is cleaned up`);
  return kernel.recordCleanup(r, ok, now, jitter);
}

/** The version being replaced is no longer current (someone else rotated it): stop. */
export function supersede(r: Rotation, token: string, reason: string, now: Date): Rotation {
  kernel.requireLease(r, r.step, token);
  if (r.promoted) throw new RotationStateError(`Rotation ${r.id}: already promoted, cannot be superseded`);
  return { ...kernel.end(r, token, 'superseded', now), outcome: reason.slice(0, 300) };
}

/** The next attempt after a failed one: same version, attempt + 1, with what to clean up. */
export function nextAttempt(failed: Rotation, trigger: Trigger, now: Date): Rotation {
  if (failed.status !== 'failed') throw new RotationStateError(`Rotation ${failed.id} has not failed`);
  if (failed.promoted) throw new RotationStateError(`Rotation ${failed.id} already promoted its value`);
  const leftovers: Leftovers = { fromRotation: failed.id, tokens: failed.steps.create?.tokens ?? [], provider: failed.provider };
  if (failed.appObjectId) leftovers.appObjectId = failed.appObjectId;
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

/**
 * Started and not yet announced, or past its grace with a retire that keeps failing: a
 * second renewal of the same credential must wait (renewing on top of a stuck retire
 * would mint a third credential while the first is still enabled).
 */
export const isInFlight = (r: Rotation): boolean =>
  r.status === 'active' && (r.step !== 'retire' || (r.steps.retire?.failures ?? 0) > 0);

/** Promoted and announced, waiting to retire its old version (in grace or just past it), with no failed retire. */
export const awaitingRetire = (r: Rotation): boolean => r.status === 'active' && r.step === 'retire' && !isInFlight(r);

/**
 * Ends the grace period now: a newer rotation of the same credential is about to
 * start, and a managed secret keeps at most two enabled versions (current and previous).
 */
export function endGrace(r: Rotation, now: Date): Rotation {
  if (!awaitingRetire(r)) throw new RotationStateError(`Rotation ${r.id} is not waiting to retire`);
  if (r.retireAfter && Date.parse(r.retireAfter) <= now.getTime() && r.dueAt && Date.parse(r.dueAt) <= now.getTime()) return r;
  return { ...r, retireAfter: iso(now), dueAt: iso(now), updatedAt: iso(now) };
}

export function stateOf(r: Rotation, now: Date): RotationState {
  if (r.status !== 'active') return r.status;
  if (r.step === 'retire' && r.retireAfter && Date.parse(r.retireAfter) > now.getTime()) return 'grace';
  return r.step;
}

/** What the sweep knows about a failed rotation's credential when deciding to alert. */
export interface AlertFacts {
  /** The secret's current version (what consumers read). */
  currentVersion: string;
  /** When the current version expires. */
  expiresOn?: Date;
  /** Every rotation of the credential (attempts of the same version included). */
  rotations: Rotation[];
}

/**
 * A failed rotation is re-alerted once a day until the credential is renewed or
 * expires; once expired, one last alert says so. Renewed means: its version is no
 * longer current (a later rotation, or a hand, replaced it), or a later attempt of the
 * same version exists (that attempt alerts for itself if it fails too).
 */
export function alertDue(r: Rotation, now: Date, facts: AlertFacts): boolean {
  if (r.status !== 'failed') return false;
  if (r.fromVersion !== facts.currentVersion.toLowerCase()) return false;
  if (facts.rotations.some((o) => o.fromVersion === r.fromVersion && o.attempt > r.attempt)) return false;
  const last = Date.parse(r.alerts?.lastAt ?? r.endedAt ?? r.updatedAt);
  const expiresOn = facts.expiresOn;
  if (expiresOn && now.getTime() >= expiresOn.getTime()) return last < expiresOn.getTime();
  return now.getTime() - last >= DAY_MS;
}

/**
 * A rotation past promotion whose notify or retire has failed maxAttempts times in a row
 * alerts then, and again once a day (or at once when another step gets stuck).
 */
export function stuckAlertDue(r: Rotation, now: Date, maxAttempts: number): boolean {
  if (r.status !== 'active' || !pastPromotion(r) || (r.steps[r.step]?.failures ?? 0) < maxAttempts) return false;
  if (!r.alerts || r.alerts.step !== r.step) return true;
  return now.getTime() - Date.parse(r.alerts.lastAt) >= DAY_MS;
}

export function markAlerted(r: Rotation, now: Date): Rotation {
  return {
    ...r,
    alerts: { lastAt: iso(now), count: (r.alerts?.count ?? 0) + 1, ...(r.status === 'active' ? { step: r.step } : {}) },
    updatedAt: iso(now),
  };
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
  if (r.status === 'failed' && r.promoted) v.push('failed after promotion');
  return v;
}
