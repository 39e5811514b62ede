/**
 * An incident's automatic steps as a job kind of the step runner (resumable: the
 * `resumeRotations` timer advances due runs). The plan is data (`planFor`); each step
 * name maps to an implementation in `STEP_CATALOG`, and every entry a step appends
 * carries a ref naming the step, so a step resumed after a crash appends nothing twice.
 *
 * Issue 15's playbooks add their steps here (and their names to `PLAYBOOKS`).
 */
import { SYSTEM, type Incident, advanceProgress } from '../../domain/incident';
import { type IncidentJob, LAST_STEP, completeIncidentStep, incidentFailurePolicy, incidentKernel } from '../../domain/incidentPlaybook';
import { KeyturnError, describeError, notFound } from '../../errors';
import type { JobKind, StepRun } from '../jobs/runner';
import type { IncidentJobStore, ScopeLookups } from './ports';
import { type RecordDeps, changeIncident, flushOutbox } from './records';
import { resolveScope } from './scope';
import { runPlannedStep } from '../playbooks/run';
import type { PlaybookActions } from '../playbooks/steps';

export const INCIDENT_RUN_KIND = 'incident-run';

export interface StepContext {
  incident: Incident;
  run: StepRun<IncidentJob, string>;
  /** Appends the step's `part`-th entry once (actor `system`). */
  record(part: number, event: string, evidence: Record<string, unknown>): Promise<void>;
  /** Moves the incident's progress (ETag-guarded; the state change is recorded and checkpointed). */
  progress(to: 'running' | 'contained' | 'resolved'): Promise<Incident>;
}

export type IncidentStep = (c: StepContext, deps: RunDeps) => Promise<void>;

export interface RunDeps extends RecordDeps {
  jobs: IncidentJobStore;
  lookups: ScopeLookups;
  leaseMs: number;
  maxAttempts: number;
  /** The life cycles' actions a playbook's steps call (issue 15); absent: a plan naming one fails that step. */
  playbookActions?: PlaybookActions;
}

/** The steps any plan may name. */
export const STEP_CATALOG: Record<string, IncidentStep> = {
  /** Records what the scope resolved to when the run started (states, kids, versions; never values). */
  async 'snapshot-scope'(c, deps) {
    const { snapshot } = await resolveScope(deps.lookups, c.incident.scope).catch((e: unknown) => {
      // Things named at open may be gone by now (a revoked tenant's document): recorded, not fatal.
      return { snapshot: { unresolved: describeError(e).slice(0, 300) } };
    });
    await c.record(0, 'scope-snapshot', { step: 'snapshot-scope', snapshot });
    // The playbook planned at open (issue 15): its steps, in order, before any of them runs.
    const playbook = c.run.job.playbook;
    if (playbook) await c.record(1, 'playbook-planned', { type: c.incident.type, steps: playbook.map((p) => p.id) });
  },
  /** The playbook's steps are done: the incident is contained. */
  async contain(c) {
    if (c.incident.progress === 'running' || c.incident.progress === 'open') await c.progress('contained');
  },
};

export function incidentRunKind(deps: RunDeps): JobKind<IncidentJob, string, void> {
  const steps = Object.fromEntries(Object.entries(STEP_CATALOG).map(([name, impl]) => [name, (run: StepRun<IncidentJob, string>) => runStep(deps, name, impl, run)]));
  return {
    kind: INCIDENT_RUN_KIND,
    label: 'Incident run',
    idKey: 'incidentId',
    store: deps.jobs,
    leaseMs: deps.leaseMs,
    decide: (job, now, owner) => incidentKernel(job.plan).decide(job, now, owner),
    claim: (job, claim, now) => incidentKernel(job.plan).claim(job, claim, now),
    // A playbook's planned step runs by its id; a plan naming a step nobody implements fails that step (recorded), never the process.
    steps: new Proxy(steps, {
      get: (t, name: string) =>
        t[name] ??
        (async (run: StepRun<IncidentJob, string>) => {
          const planned = run.job.playbook?.find((s) => s.id === name);
          if (!planned || !deps.playbookActions) throw new Error(`no step '${name}' in the catalog`);
          const actions = deps.playbookActions;
          return runStep(deps, name, (c) => runPlannedStep(planned, c, deps, actions), run);
        }),
    }),
    async record({ job, step, token, now }) {
      return { next: completeIncidentStep(job, step, token, now), written: () => deps.log.info(`Incident step ${step} done`, { incidentId: job.incidentId }) };
    },
    async failed({ job, step, token, now }, error) {
      // A step waiting for a batch job it started is not failing: it looks again after the backoff, without an attempt limit.
      const waiting = error instanceof KeyturnError && error.code === 'PLAYBOOK_STEP_WAITING';
      const next = incidentKernel(job.plan).fail(job, token, now, incidentFailurePolicy(waiting ? Number.MAX_SAFE_INTEGER : deps.maxAttempts, Math.random()));
      if (next.status === 'failed') {
        const remaining = job.plan.slice(job.plan.indexOf(step));
        const failures = next.steps[step]?.failures ?? 0;
        await deps.chain
          .appendOnce(job.incidentId, `step:${step}:failed:${failures}`, { event: 'step-failed', actor: SYSTEM, claimedBy: null, evidence: { step, remaining, error: describeError(error).slice(0, 300) } })
          .catch((e: unknown) => deps.log.warn('Could not record a failed incident step', { incidentId: job.incidentId, error: describeError(e) }));
      }
      return { next, written: () => deps.log.warn(`Incident step ${step} failed`, { incidentId: job.incidentId, error: describeError(error) }) };
    },
    async cleanup(job, now) {
      return { next: incidentKernel(job.plan).recordCleanup(job, true, now, Math.random()), written: () => undefined };
    },
  };
}

async function runStep(deps: RunDeps, name: string, impl: IncidentStep, run: StepRun<IncidentJob, string>): Promise<void> {
  const stored = await deps.incidents.read(run.job.incidentId);
  if (!stored) throw notFound(`Incident '${run.job.incidentId}'`, { incidentId: run.job.incidentId });
  // A change a crash left unrecorded is finished first.
  let incident = await flushOutbox(deps, stored);
  if (incident.progress === 'closed') return;
  // Running while steps other than the final `contain` run (a resumed run re-opens a contained incident).
  if (name !== LAST_STEP && (incident.progress === 'open' || incident.progress === 'contained')) {
    incident = await changeIncident(deps, incident.incidentId, (i) => (i.progress === 'open' || i.progress === 'contained' ? advanceProgress(i, 'running', SYSTEM, run.now) : i));
  }
  const context: StepContext = {
    incident,
    run,
    async record(part, event, evidence) {
      const current = (await deps.incidents.read(incident.incidentId))?.doc ?? incident;
      await deps.chain.appendOnce(incident.incidentId, `step:${name}:${part}`, { event, actor: SYSTEM, claimedBy: null, evidence: { step: name, ...evidence } }, { state: current.state });
    },
    progress: (to) => changeIncident(deps, incident.incidentId, (i) => (i.progress === to || i.progress === 'closed' ? i : advanceProgress(i, to, SYSTEM, run.now))),
  };
  await impl(context, deps);
}
