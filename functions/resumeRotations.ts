import { type InvocationContext, type Timer, app } from '@azure/functions';
import { type JobsRoot, root, contextLogger } from '../shared/root';

/**
 * Every minute: advances the due work of every registered job kind (rotations first), batch
 * after batch until none is due or KEYTURN_RESUME_BUDGET_SECONDS ends:
 * retries after backoff, takes over expired leases, retires after grace.
 */
export function makeResumeRotationsHandler(jobs: Pick<JobsRoot, 'registry'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const report = await jobs.registry(log).resumeDue();
    if (report.due > 0) log.info('Resumed due jobs', report);
  };
}

app.timer('resumeRotations', { schedule: '%KEYTURN_RESUME_SCHEDULE%', handler: makeResumeRotationsHandler(root().jobs) });
