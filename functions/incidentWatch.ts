import { type InvocationContext, type Timer, app } from '@azure/functions';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';

/** Daily (KEYTURN_INCIDENT_VERIFY_SCHEDULE): verifies every incident record; each finding opens one log-tampering incident. */
export function makeIncidentWatchHandler(incidents: Pick<IncidentsRoot, 'watch'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const { ok, incidents: count, failures, opened } = await incidents.watch(log);
    log.info('Incident records verified', { ok, incidents: count, failures: failures.length, opened });
  };
}

app.timer('incidentWatch', { schedule: '%KEYTURN_INCIDENT_VERIFY_SCHEDULE%', handler: makeIncidentWatchHandler(root().incidents) });
