import { type InvocationContext, type Timer, app } from '@azure/functions';
import { type RenewalRoot, root, contextLogger } from '../shared/root';

/** Hourly: renews managed secrets inside the renewal window (or expired); re-alerts failed rotations daily. */
export function makeExpirySweepHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const report = await renewal.service(log).sweep();
    log.info('Expiry sweep finished', report);
  };
}

app.timer('expirySweep', { schedule: '%KEYTURN_SWEEP_SCHEDULE%', handler: makeExpirySweepHandler(root().renewal) });
