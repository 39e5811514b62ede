import { type InvocationContext, type Timer, app } from '@azure/functions';
import { type SigningRoot, root, contextLogger } from '../shared/root';

/**
 * Hourly: rolls the signing keys when due and retires previous keys whose tokens have expired.
 * Also at start-up, so a fresh deployment publishes its first keys within seconds (a run with
 * nothing due is one point read; concurrent runs on several instances are ETag-guarded).
 */
export function makeSigningKeyRolloverHandler(signing: Pick<SigningRoot, 'service'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const outcomes = await signing.service(log).runSchedule();
    log.info('Signing key rollover run finished', { changes: outcomes.map((o) => o.transition.type) });
  };
}

app.timer('signingKeyRollover', {
  schedule: '%KEYTURN_SIGNING_ROLLOVER_SCHEDULE%',
  runOnStartup: true,
  handler: makeSigningKeyRolloverHandler(root().signing),
});
