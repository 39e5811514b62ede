/**
 * Credential renewal as a job kind of the step runner: its store, its steps, and what
 * a step's result, a failure or a clean-up writes (with the alerts they raise).
 */
import { describeError, errorFacts } from '../../errors';
import {
  type Rotation,
  type Step,
  claimStep,
  completeStep,
  decideNext,
  failStep,
  markAlerted,
  recordCleanup,
  stateOf,
  stuckAlertDue,
  supersede,
} from '../../domain/rotation';
import type { JobKind, Outcome, StepRun } from '../jobs/runner';
import { cleanUp, discardCreated } from './artifacts';
import type { RenewalContext } from './context';
import { type Performed, renewalSteps } from './steps';

export const RENEWAL_KIND = 'renewal';

export function renewalJob(c: RenewalContext): JobKind<Rotation, Step, Performed> {
  const { rotations, settings, log } = c.deps;
  return {
    kind: RENEWAL_KIND,
    label: 'Rotation',
    idKey: 'rotationId',
    store: rotations,
    leaseMs: settings.leaseSeconds * 1000,
    decide: (r, now, owner) => decideNext(r, now, { owner }),
    claim: claimStep,
    steps: renewalSteps(c),
    record: (run, performed) => record(c, run, performed),
    failed: (run, error) => failed(c, run, error),
    async cleanup(r, now) {
      const ok = await cleanUp(c, r);
      return {
        next: recordCleanup(r, ok, now, c.random()),
        written: () => log[ok ? 'info' : 'warn'](`Clean-up of the ${r.status} rotation ${ok ? 'done' : 'failed again; will retry'}`, { rotationId: r.id }),
      };
    },
    async lost(run, performed) {
      if ('step' in performed && performed.step === 'create') await discardCreated(c, run.job, performed);
    },
  };
}

async function record(c: RenewalContext, { job: r, step, token, now }: StepRun<Rotation, Step>, performed: Performed): Promise<Outcome<Rotation>> {
  let next = 'superseded' in performed ? supersede(r, token, performed.superseded, now) : completeStep(r, token, performed, now);
  // Nothing of a superseded rotation may stay valid: its artifacts go before the status is written.
  if (next.status === 'superseded') next = recordCleanup(next, await cleanUp(c, r), now, c.random());
  return {
    next,
    written: () =>
      c.deps.log.info(`Rotation ${'superseded' in performed ? 'superseded' : `step ${step} done`}`, {
        rotationId: r.id,
        state: stateOf(next, now),
        ...(next.promoted && step === 'promote' ? { newVersion: next.promoted.version } : {}),
        ...('superseded' in performed ? { reason: performed.superseded, cleanup: next.cleanup?.state } : {}),
      }),
  };
}

/**
 * A failed try: stored as name/code/status and the step's fixed message (the full text
 * goes to the log only). Before promotion the last try fails the rotation, after its
 * artifacts are cleaned up; after promotion it never fails and alerts when stuck.
 */
async function failed(c: RenewalContext, { job: r, step, token, now }: StepRun<Rotation, Step>, thrown: unknown): Promise<Outcome<Rotation>> {
  const { settings, log } = c.deps;
  let next = failStep(r, token, errorFacts(thrown), now, { maxAttempts: settings.maxAttempts, jitter: c.random() });
  if (next.status === 'failed') next = recordCleanup(next, await cleanUp(c, r), now, c.random());
  const stuck = stuckAlertDue(next, now, settings.maxAttempts);
  if (stuck) next = markAlerted(next, now);
  const written = () => {
    const props = {
      rotationId: r.id,
      vault: r.vault,
      name: r.name,
      step,
      attempt: r.attempt,
      failures: next.steps[step]?.failures,
      error: describeError(thrown),
    };
    if (next.status === 'failed') {
      log.error(
        'ALERT: credential rotation failed before promotion; the old credential stays current. Renew it with POST /api/credentials/{vault}/{name}/renew',
        { ...props, cleanup: next.cleanup?.state },
      );
    } else if (stuck) {
      const what = step === 'notify' ? 'consumers have not been told' : 'the old credential is still enabled';
      log.error(`ALERT: credential rotation is stuck at ${step} after promotion: the new version is current but ${what}; retrying`, {
        ...props,
        newVersion: next.promoted?.version,
        nextAttemptAt: next.nextAttemptAt,
      });
    } else {
      log.warn('Rotation step failed; will retry', { ...props, nextAttemptAt: next.nextAttemptAt });
    }
  };
  return { next, written };
}
