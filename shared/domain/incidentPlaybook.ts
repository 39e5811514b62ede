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
  createdAt: string;
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
export function newIncidentJob(incidentId: string, plan: string[], now: Date): IncidentJob {
  const at = now.toISOString();
  return incidentKernel(plan).touched({ id: incidentId, incidentId, plan, status: 'active', step: plan[0]!, steps: {}, createdAt: at, updatedAt: at }, now);
}

export function completeIncidentStep(job: IncidentJob, step: string, token: string, now: Date): IncidentJob {
  const kernel = incidentKernel(job.plan);
  const record: StepRecord = kernel.requireLease(job, step, token);
  return kernel.complete(job, step, record, now);
}

/** A step is retried with backoff; after `maxAttempts` the run ends `failed` (the timeline says which step and what remains). */
export const incidentFailurePolicy = (maxAttempts: number, jitter: number): FailurePolicy => ({ maxAttempts, jitter, mayFail: true });
