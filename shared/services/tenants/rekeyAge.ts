/**
 * The tenant timer's rekey-after-days pass (rules in `domain/tenantRekeyAge.ts`): every
 * tenant that is not revoked, a page at a time. A service-managed tenant's rekey names
 * `fromKid`, so the rekey job's id is derived from the version replaced: a second run, a
 * second host or a crash mid-rekey makes one new version. A BYOK tenant's notice id is
 * derived from the version: one RekeyNeeded per version, however often the timer runs.
 */
import { describeError } from '../../errors';
import { rekeyAgeAction } from '../../domain/tenantRekeyAge';
import type { Tenant } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import type { NoticeSink } from './notices';
import type { TenantStore } from './ports';
import type { RekeyService } from './rekeyService';

export interface RekeyAgeDeps {
  tenants: TenantStore;
  rekeys: RekeyService;
  notices?: NoticeSink;
  clock: Clock;
  log: Logger;
  /** KEYTURN_TENANT_REKEY_AFTER_DAYS (at least 1). */
  afterDays: number;
}

export interface RekeyAgeReport {
  checked: number;
  rekeyed: number;
  notified: number;
}

export async function applyRekeyAge(deps: RekeyAgeDeps, pageSize = 50): Promise<RekeyAgeReport> {
  const report: RekeyAgeReport = { checked: 0, rekeyed: 0, notified: 0 };
  if (!deps.tenants.livePage) return report;
  let continuation: string | undefined;
  do {
    const page = await deps.tenants.livePage({ maxItems: pageSize, ...(continuation ? { continuation } : {}) });
    for (const tenant of page.items) {
      report.checked++;
      try {
        await applyOne(deps, tenant, report);
      } catch (e) {
        // One tenant's trouble never stops the others' rekeys.
        deps.log.warn('Rekey-after-days of a tenant failed; the next timer run retries', { tenantId: tenant.tenantId, error: describeError(e) });
      }
    }
    continuation = page.continuation;
  } while (continuation);
  return report;
}

async function applyOne(deps: RekeyAgeDeps, tenant: Tenant, report: RekeyAgeReport): Promise<void> {
  const due = rekeyAgeAction(tenant, await deps.clock.now(), deps.afterDays);
  if (!due) return;
  const props = { tenantId: tenant.tenantId, kid: due.kid, activatedAt: due.activatedAt, afterDays: deps.afterDays };
  if (due.action === 'notify') {
    if (!deps.notices) return;
    await deps.notices.emit({
      tenantId: tenant.tenantId,
      transition: 'rekeyNeeded',
      // Its own notice (not the expiry one's): the admins learn why.
      version: `rekey-after-days:${due.kid}`,
      data: { topology: 'byok', kid: due.kid, reason: 'rekey-after-days', activatedAt: due.activatedAt, afterDays: deps.afterDays, adminContacts: tenant.adminContacts },
    });
    report.notified++;
    return;
  }
  const { started } = await deps.rekeys.rekey(tenant.tenantId, {
    reason: `rekey-after-days policy: the version in use is older than ${deps.afterDays} days`,
    fromKid: due.kid,
    requestedBy: 'keyturn',
  });
  if (started) report.rekeyed++;
  deps.log.info('Tenant rekeyed by the rekey-after-days policy', { ...props, started });
}
