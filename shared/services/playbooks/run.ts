/**
 * One planned playbook step as a step of the incident's run (`incidents/job.ts`): the
 * step runs over the life cycles' actions (`steps.ts`), each note becomes a timeline
 * entry (actor `system`, ref `step:{id}:{n}`: appended once), each task an incident task
 * (once: a re-run finds it by title), and a step waiting for a batch job fails this
 * attempt, so the kernel's backoff looks again later.
 */
import { type Incident, SYSTEM, addTask } from '../../domain/incident';
import type { PlannedStep } from '../../domain/playbooks';
import { KeyturnError } from '../../errors';
import type { RecordDeps } from '../incidents/records';
import { changeIncident } from '../incidents/records';
import { type PlaybookActions, runPlaybookStep } from './steps';

/** What the incident's run hands a step (its `StepContext`, without importing the run). */
export interface PlannedStepContext {
  incident: Incident;
  run: { now: Date };
  record(part: number, event: string, evidence: Record<string, unknown>): Promise<void>;
}

export async function runPlannedStep(step: PlannedStep, c: PlannedStepContext, deps: RecordDeps, actions: PlaybookActions): Promise<void> {
  const reason = `incident ${c.incident.incidentId} ${c.incident.type}`;
  const outcome = await runPlaybookStep(step, actions, reason);
  let part = 0;
  for (const note of outcome.notes) await c.record(part++, note.event, note.evidence);
  if (!outcome.done) {
    throw new KeyturnError('PLAYBOOK_STEP_WAITING', `Playbook step ${step.id} waits for work it started`, { step: step.id, retryAfterMs: outcome.retryAfterMs });
  }
  for (const task of outcome.tasks) {
    await changeIncident(deps, c.incident.incidentId, (i) =>
      i.tasks.some((t) => t.title === task.title) || i.progress === 'closed' ? i : addTask(i, { title: task.title, blocking: task.blocking }, SYSTEM, null, c.run.now).incident,
    );
  }
}
