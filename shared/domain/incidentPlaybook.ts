/**
 * An incident's automatic steps (pure): which steps run, as data — incident type +
 * scope + state → an ordered list of step names — and the job that runs them on the
 * step kernel (`stepKernel.ts`). Each step's implementation lives in the services'
 * step catalog (`services/incidents/steps.ts`) and appends its own timeline entries.
 *
 * The playbooks (issue 15) add rows to `PLAYBOOKS` and implementations to the catalog;
 * the mechanism stays as is. Every plan starts by recording the scope snapshot and
 * ends with `contain` (the incident is `contained` once its steps are done).
 */
import { invalidTransition } from '../errors';
import type { Incident, IncidentType } from './incident';
import type { PlannedStep } from './playbooks';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';

/** Built-in steps every plan has. */
export const FIRST_STEP = 'snapshot-scope';
export const LAST_STEP = 'contain';

/** The type's own steps, between the scope snapshot and `contain` (none yet: issue 15 fills them). */
export const PLAYBOOKS: Record<IncidentType, readonly string[]> = {
  'key-leaked': [],
  'unauthorized-use': [],
  'hsm-vulnerability': [],
  'algorithm-weakness': [],
  'log-tampering': [],
  'access-lost': [],
};

/** The ordered steps of an incident's run. */
export function planFor(incident: Pick<Incident, 'type' | 'scope' | 'state'>, playbooks: Record<IncidentType, readonly string[]> = PLAYBOOKS): string[] {
  return [FIRST_STEP, ...playbooks[incident.type], LAST_STEP];
}

export interface IncidentJob extends StepJob<string> {
  incidentId: string;
  plan: string[];
  /** The playbook's steps (issue 15), planned once at open: a resumed run finishes the same ones. */
  playbook?: PlannedStep[];
  createdAt: string;
}

/** A playbook's run: the scope snapshot, each planned step by its id, then `contain`. */
export const playbookPlan = (playbook: PlannedStep[]): string[] => [FIRST_STEP, ...playbook.map((s) => s.id), LAST_STEP];

/** Held for a second approver: the kernel leaves a job that is not `active` alone (no `dueAt`). */
export const AWAITING_APPROVAL = 'awaiting-approval';

/** The approved (or resumed after `failed`) run is active again at the step where it stopped. */
export function reactivateIncidentJob(job: IncidentJob, now: Date): IncidentJob {
  if (job.status === 'active' || job.status === 'completed') return job;
  if (job.status !== AWAITING_APPROVAL && job.status !== 'failed') throw invalidTransition(`Incident run ${job.id} is ${job.status}`);
  const record = job.steps[job.step];
  // A failed step starts its retries afresh; what it already did is idempotent.
  const steps = record ? { ...job.steps, [job.step]: { ...record, failures: 0 } } : job.steps;
  const { endedAt, nextAttemptAt, lease, ...rest } = job;
  void endedAt; void nextAttemptAt; void lease;
  return incidentKernel(job.plan).touched({ ...rest, status: 'active', steps }, now);
}

const kernels = new Map<string, ReturnType<typeof makeKernel>>();
const makeKernel = (plan: readonly string[]) =>
  stepKernel<IncidentJob, string, 'completed' | 'failed'>({ steps: plan, refuse: (message) => invalidTransition(message), label: 'Incident run' });

/** The kernel for one plan (plans are data, so the kernel is built per plan and cached). */
export function incidentKernel(plan: readonly string[]) {
  const key = plan.join('\n');
  let kernel = kernels.get(key);
  if (!kernel) kernels.set(key, (kernel = makeKernel(plan)));
  return kernel;
}

/** The job's id is the incident's: one run per incident. */
export function newIncidentJob(incidentId: string, plan: string[], now: Date, options: { playbook?: PlannedStep[]; awaitingApproval?: boolean } = {}): IncidentJob {
  const at = now.toISOString();
  const status = options.awaitingApproval ? AWAITING_APPROVAL : 'active';
  const playbook = options.playbook ? { playbook: options.playbook } : {};
  return incidentKernel(plan).touched({ id: incidentId, incidentId, plan, ...playbook, status, step: plan[0]!, steps: {}, createdAt: at, updatedAt: at }, now);
}

export function completeIncidentStep(job: IncidentJob, step: string, token: string, now: Date): IncidentJob {
  const kernel = incidentKernel(job.plan);
  const record: StepRecord = kernel.requireLease(job, step, token);
  return kernel.complete(job, step, record, now);
}

/** A step is retried with backoff; after `maxAttempts` the run ends `failed` (the timeline says which step and what remains). */
export const incidentFailurePolicy = (maxAttempts: number, jitter: number): FailurePolicy => ({ maxAttempts, jitter, mayFail: true });
