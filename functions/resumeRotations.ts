import { type InvocationContext, type Timer, app } from '@azure/functions';
import { contextLogger } from '../shared/adapters/logger';
import { type RenewalRoot, root } from '../shared/root';

/** Every minute: advances due rotations (retries after backoff, takes over expired leases, retires after grace). */
export function makeResumeRotationsHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const report = await renewal.service(log).resumeDue();
    if (report.due > 0) log.info('Resumed rotations', report);
  };
}

app.timer('resumeRotations', { schedule: '%KEYTURN_RESUME_SCHEDULE%', handler: makeResumeRotationsHandler(root().renewal) });
