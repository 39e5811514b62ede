/**
 * Tenant-key notifications on Keyturn's topic, each a one-step job of the step kernel:
 * the transition that causes one creates it create-only under an id derived from
 * (tenant, transition, version), and its `send` step publishes with that id as the
 * event id and records that it was sent. A crash before the record republishes the
 * same event id (subscribers dedupe on it); a second create is a no-op; nothing is
 * dropped because the creating step is not recorded until the notice exists.
 */
import { createHash } from 'node:crypto';
import { invalidTransition } from '../errors';
import { type StepJob, stepKernel } from './stepKernel';

export const NOTICE_TYPES = {
  rekeyed: 'Keyturn.TenantKeyRekeyed',
  archived: 'Keyturn.TenantKeyArchived',
  revoked: 'Keyturn.TenantKeyRevoked',
  accessLost: 'Keyturn.TenantKeyAccessLost',
  rekeyNeeded: 'Keyturn.TenantKeyRekeyNeeded',
} as const;
export type NoticeTransition = keyof typeof NOTICE_TYPES;

export const NOTICE_STEPS = ['send'] as const;
export type NoticeStep = (typeof NOTICE_STEPS)[number];

export interface TenantNotice extends StepJob<NoticeStep> {
  tenantId: string;
  transition: NoticeTransition;
  eventType: string;
  subject: string;
  /** Ids, states and contacts only: never key material. */
  data: Record<string, unknown>;
  createdAt: string;
  sentAt?: string;
}

/** Deterministic: the same transition of the same version is one notice, one event id. */
export const noticeId = (tenantId: string, transition: NoticeTransition, version: string): string =>
  `notice-${tenantId}-${createHash('sha256').update(`${transition}\n${version}`).digest('hex').slice(0, 32)}`;

const kernel = stepKernel<TenantNotice, NoticeStep, 'completed' | 'failed'>({
  steps: NOTICE_STEPS,
  refuse: (message) => invalidTransition(message),
  label: 'Tenant notice',
});

export const noticeKernel = kernel;

export function newNotice(
  input: { tenantId: string; transition: NoticeTransition; version: string; data: Record<string, unknown> },
  now: Date,
): TenantNotice {
  const at = now.toISOString();
  return kernel.touched(
    {
      id: noticeId(input.tenantId, input.transition, input.version),
      tenantId: input.tenantId,
      transition: input.transition,
      eventType: NOTICE_TYPES[input.transition],
      subject: `/tenants/${input.tenantId}`,
      data: { tenantId: input.tenantId, ...input.data },
      status: 'active',
      step: 'send',
      steps: {},
      createdAt: at,
      updatedAt: at,
    },
    now,
  );
}

export function completeNotice(job: TenantNotice, token: string, now: Date): TenantNotice {
  const record = kernel.requireLease(job, 'send', token);
  return kernel.complete({ ...job, sentAt: now.toISOString() }, 'send', record, now);
}
