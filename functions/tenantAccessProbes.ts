import { type InvocationContext, type Timer, app } from '@azure/functions';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/**
 * On KEYTURN_TENANT_PROBE_SCHEDULE: a wrap/unwrap probe of every BYOK tenant's key in use.
 * Consecutive 403s spanning KEYTURN_TENANT_ACCESS_LOST_MINUTES mark it `access-lost`
 * (one Keyturn.TenantKeyAccessLost); access back makes it `active` again; a new version
 * the customer created of the key is a rekey. With KEYTURN_TENANT_REKEY_AFTER_DAYS set, the
 * same timer applies the rekey-after-days policy.
 */
export function makeTenantAccessProbesHandler(tenants: Pick<TenantsRoot, 'probe' | 'rekeyAge'>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const report = await tenants.probe(log);
    if (report.probed > 0) log.info('BYOK access probes done', { ...report });
    const aged = await tenants.rekeyAge?.(log);
    if (aged && aged.rekeyed + aged.notified > 0) log.info('Rekey-after-days policy applied', { ...aged });
  };
}

app.timer('tenantAccessProbes', { schedule: '%KEYTURN_TENANT_PROBE_SCHEDULE%', handler: makeTenantAccessProbesHandler(root().tenants) });
