/**
 * Credential renewal (life cycle 1): the rotation state machine (`domain/rotation.ts`,
 * on the step kernel) run by the step runner (`services/jobs/runner.ts`) against the
 * renewal ports. This class is the entry point the functions use; the work is in the
 * modules beside it:
 *   requests.ts  starting renewals (events, sweep, HTTP renew)
 *   idempotency.ts  HTTP renew's Idempotency-Key (answers kept, replayed)
 *   events.ts    renewal's handler in the Key Vault event intake
 *   job.ts       renewal as a job kind: steps (steps.ts), failures, clean-up (artifacts.ts)
 *   sweep.ts     the hourly expiry sweep and its alerts
 *   queries.ts   what HTTP reads (views.ts)
 */
import type { Rotation, Step } from '../../domain/rotation';
import type { DeadLetter } from '../events/ports';
import { KeyVaultEventIntake } from '../events/intake';
import { type ResumableKind, resumable } from '../jobs/registry';
import { type JobKind, type ResumeReport, StepRunner } from '../jobs/runner';
import type { RenewalContext, RenewalDeps } from './context';
import { RENEWAL_HANDLER, renewalEventHandler } from './events';
import { type Answer, oncePerKey } from './idempotency';
import { renewalJob } from './job';
import { getRotation, listCredentials, listCredentialsPage } from './queries';
import { type StartOutcome, renew, startRenewal } from './requests';
import type { Performed } from './steps';
import { type SweepReport, sweep } from './sweep';

export type { RenewalDeps, RenewalSettings } from './context';
export { ROTATED_EVENT } from './context';
export type { StartOutcome } from './requests';

export type EventOutcome = StartOutcome | { outcome: 'dead-lettered'; reason: DeadLetter['reason'] } | { outcome: 'routed' };

export class RenewalService {
  private readonly context: RenewalContext;
  private readonly runner: StepRunner;
  private readonly job: JobKind<Rotation, Step, Performed>;

  constructor(deps: RenewalDeps) {
    this.runner = new StepRunner({ clock: deps.clock, faults: deps.faults, log: deps.log, owner: deps.owner, ...(deps.newToken ? { newToken: deps.newToken } : {}) });
    this.context = { deps, random: deps.random ?? Math.random, advance: (id) => this.runner.advance(this.job, id) };
    this.job = renewalJob(this.context);
  }

  /** Renewal's handler, for the Key Vault event intake. */
  eventHandler() {
    return renewalEventHandler(this.context);
  }

  /** Renewal's due work, for the job registry the resume timer runs. */
  resumable(): ResumableKind {
    return resumable(this.runner, this.job);
  }

  /**
   * One delivered event through the intake, with renewal's handler and then
   * `deps.keyEvents` (the webhook's intake is built the same way in the composition
   * root). Renewal's own outcomes come back as they are; another handler's as `routed`.
   */
  async handleEvent(raw: unknown): Promise<EventOutcome> {
    const { deadLetters, clock, log, settings, keyEvents } = this.context.deps;
    if (!deadLetters) throw new Error('RenewalService.handleEvent needs deps.deadLetters');
    const intake = new KeyVaultEventIntake({ deadLetters, clock, log, settings }).register(this.eventHandler());
    if (keyEvents) intake.register(keyEvents);
    const o = await intake.receive(raw);
    if (o.outcome !== 'handled') return o;
    if (o.handler !== RENEWAL_HANDLER) return { outcome: 'routed' };
    const detail = o.detail ?? {};
    return o.result === 'ignored'
      ? { outcome: 'ignored', reason: String(detail.reason) }
      : { outcome: o.result as 'started' | 'duplicate', rotationId: String(detail.rotationId) };
  }

  /** Starts attempt 1 for the secret's current version (events, sweep): a duplicate is a no-op. */
  startRenewal(input: Parameters<typeof startRenewal>[1]): Promise<StartOutcome> {
    return startRenewal(this.context, input);
  }

  /** HTTP renew: the next attempt (after a failed one) or the first; 409 while one is in flight. */
  /** `noGrace`: the old version is disabled right after promotion (a leaked credential, issue 15). */
  async renew(vault: string, name: string, options: { fromVersion?: string; noGrace?: boolean } = {}) {
    return (await renew(this.context, vault, name, options)).rotation;
  }

  /**
   * HTTP renew as the route answers it: 202 with a rotation it started, 200 with the one
   * already replacing `fromVersion`; with an `idempotencyKey` the same request gets the
   * same answer (`replayed`), a different one with the same key IDEMPOTENCY_KEY_REUSED.
   */
  async renewRequest(vault: string, name: string, options: { fromVersion?: string; idempotencyKey?: string } = {}): Promise<Answer & { replayed: boolean }> {
    const { idempotencyKey, ...body } = options;
    const run = async (): Promise<Answer> => {
      const answer = await renew(this.context, vault, name, body);
      return { status: answer.outcome === 'started' ? 202 : 200, body: { rotationId: answer.rotation.id, rotation: answer.rotation } };
    };
    if (idempotencyKey === undefined) return { ...(await run()), replayed: false };
    const request = { vault: vault.toLowerCase(), name: name.toLowerCase(), fromVersion: body.fromVersion?.toLowerCase() ?? null };
    return oncePerKey(this.context, idempotencyKey, request, run);
  }

  /** Runs the rotation until it waits (lease, backoff, grace) or ends. */
  advance(id: string): Promise<Rotation> {
    return this.context.advance(id);
  }

  /** Advances every due rotation; one failing does not stop the others. */
  resumeDue(limit = 50): Promise<ResumeReport> {
    return this.runner.resumeDue(this.job, limit);
  }

  /** Sweep timer: renews what is inside the window or expired, re-alerts failed rotations daily. */
  sweep(): Promise<SweepReport> {
    return sweep(this.context);
  }

  listCredentials() {
    return listCredentials(this.context);
  }

  listCredentialsPage(page: { top: number; continuationToken?: string }) {
    return listCredentialsPage(this.context, page);
  }

  getRotation(id: string) {
    return getRotation(this.context, id);
  }
}
