/**
 * Tenant-key notifications as one-step jobs (`domain/tenantNotice.ts`): `emit` creates
 * the notice create-only under its deterministic id and tries to send it at once; a
 * notice that could not be sent stays due and the resume timer sends it. The event id
 * is the notice id, so a crash between the publish and its record republishes the same
 * event (never a new one), and a transition seen twice is still one notice.
 */
import { describeError } from '../../errors';
import { type NoticeStep, type NoticeTransition, type TenantNotice, completeNotice, newNotice, noticeKernel } from '../../domain/tenantNotice';
import type { Clock, Logger, Notifier } from '../../ports';
import { type JobKind, type StepRunner, isInjectedCrash } from '../jobs/runner';
import type { NoticeStore } from './ports';

export const NOTICE_KIND = 'tenant-notice';

export interface NoticeInput {
  tenantId: string;
  transition: NoticeTransition;
  /** What makes this transition one of a kind (a kid, a revoke round, a loss's start). */
  version: string;
  data: Record<string, unknown>;
}

/** What steps of other jobs call: returns once the notice exists (sent or due). */
export interface NoticeSink {
  emit(input: NoticeInput): Promise<void>;
}

export function noticeJob(deps: { notices: NoticeStore; notifier: Notifier; log: Logger; leaseMs: number }): JobKind<TenantNotice, NoticeStep, 'sent'> {
  const { notices, notifier, log } = deps;
  return {
    kind: NOTICE_KIND,
    label: 'Tenant notice',
    idKey: 'noticeId',
    store: notices,
    leaseMs: deps.leaseMs,
    decide: (job, now, owner) => noticeKernel.decide(job, now, owner),
    claim: noticeKernel.claim,
    steps: {
      async send({ job, check }) {
        await check('publishing');
        await notifier.publish({ id: job.id, eventType: job.eventType, subject: job.subject, data: job.data });
        return 'sent';
      },
    },
    async record({ job, token, now }) {
      return { next: completeNotice(job, token, now), written: () => log.info('Tenant notice sent', { noticeId: job.id, eventType: job.eventType, tenantId: job.tenantId }) };
    },
    async failed({ job, token, now }, error) {
      // Never given up: a notification is retried with backoff until Event Grid takes it.
      const next = noticeKernel.fail(job, token, now, { maxAttempts: Number.MAX_SAFE_INTEGER, jitter: Math.random(), mayFail: false });
      return { next, written: () => log.warn('Tenant notice not sent yet; will retry', { noticeId: job.id, error: describeError(error) }) };
    },
    async cleanup(job, now) {
      return { next: noticeKernel.recordCleanup(job, true, now, 0), written: () => undefined };
    },
  };
}

export function noticeSink(deps: { notices: NoticeStore; runner: StepRunner; kind: JobKind<TenantNotice, NoticeStep, 'sent'>; clock: Clock; log: Logger }): NoticeSink {
  return {
    async emit(input) {
      const notice = newNotice(input, await deps.clock.now());
      const created = await deps.notices.createOnly(notice);
      if (!created) return; // the same transition seen again: one notice
      // Sent now when possible; otherwise it stays due for the resume timer.
      await deps.runner.advance(deps.kind, notice.id).catch((e: unknown) => {
        if (isInjectedCrash(e)) throw e;
        deps.log.warn('Tenant notice left for the resume timer', { noticeId: notice.id, error: describeError(e) });
      });
    },
  };
}
