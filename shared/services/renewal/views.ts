/**
 * What HTTP shows of rotations and credentials: no lease internals, never a value
 * (there is none to leak), and an error only as its facts and its step's fixed message.
 */
import { type Rotation, type RotationError, STEPS, STEP_FAILURE, stateOf } from '../../domain/rotation';
import type { TagReading } from '../../domain/managedCredential';
import { TAG, tagValue } from '../../domain/managedCredential';
import type { SecretProps } from './ports';

export type RotationView = ReturnType<typeof rotationView>;

/** The public view of one rotation (GET /api/rotations/{id}, POST …/renew). */
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
    // Rebuilt from the safe fields: a message is always the fixed text of its step.
    lastError: r.lastError ? errorView(r.lastError) : null,
    cleanup: r.cleanup ? { state: r.cleanup.state, at: r.cleanup.at, tries: r.cleanup.tries } : null,
    alerts: r.alerts ? { count: r.alerts.count, lastAt: r.alerts.lastAt } : null,
    outcome: r.outcome ?? null,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/** A stored error as shown over HTTP: name, code and status, and the fixed message of its step. */
export function errorView(e: RotationError) {
  return {
    step: e.step,
    message: STEP_FAILURE[e.step],
    name: e.name ?? 'Error',
    code: e.code ?? null,
    statusCode: e.statusCode ?? null,
    ...(e.kind ? { kind: e.kind } : {}),
    at: e.at,
  };
}

/** One managed (or invalidly tagged) credential in GET /api/credentials. */
export function credentialView(
  vaultAlias: string,
  latest: SecretProps,
  reading: Exclude<TagReading, { kind: 'unmanaged' }>,
  latestRotation: Rotation | undefined,
  now: Date,
) {
  return {
    vault: vaultAlias,
    name: latest.name,
    provider: reading.kind === 'managed' ? reading.credential.provider : (reading.provider ?? null),
    currentVersion: latest.version,
    expiresOn: latest.expiresOn?.toISOString() ?? null,
    enabled: latest.enabled,
    stage: tagValue(latest.tags, TAG.stage) ?? 'current',
    rotation: latestRotation
      ? {
          id: latestRotation.id,
          state: stateOf(latestRotation, now),
          fromVersion: latestRotation.fromVersion,
          attempt: latestRotation.attempt,
          retireAfter: latestRotation.retireAfter ?? null,
          // The step's fixed message; name, code and status are in GET /api/rotations/{id}.
          lastError: latestRotation.lastError ? STEP_FAILURE[latestRotation.lastError.step] : null,
        }
      : null,
    // `invalid`: Keyturn leaves it alone (and creates nothing) until `problem` is fixed.
    status: reading.kind,
    ...(reading.kind === 'invalid' ? { problem: `${reading.tag}: ${reading.message}` } : {}),
  };
}
