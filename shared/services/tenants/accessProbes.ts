/**
 * The BYOK access probes (a timer, `functions/tenantAccessProbes.ts`): every BYOK tenant
 * that is not revoked gets a wrap/unwrap probe with the version in use. A 403 marks
 * `access-lost` only after consecutive failed probes spanning the window (RBAC changes
 * take minutes to propagate); access back makes it `active` again by itself. While
 * access works, a new version the customer created of the key is a rekey (it passes the
 * onboarding checks: the tag on the new version, the claim, a probe).
 */
import { ConcurrencyConflict, describeError, isKeyturnError } from '../../errors';
import { type ProbeOutcome, applyProbe } from '../../domain/tenantByok';
import { type Tenant, versionOf } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import { probeKey } from './byok';
import type { NoticeSink } from './notices';
import type { TenantStore } from './ports';
import type { RekeyService } from './rekeyService';
import type { TenantService } from './tenantService';

export interface ProbeDeps {
  tenants: TenantStore;
  service: TenantService;
  rekeys: RekeyService;
  notices?: NoticeSink;
  clock: Clock;
  log: Logger;
  /** KEYTURN_TENANT_ACCESS_LOST_MINUTES (at least 10). */
  windowMs: number;
  /** Breach response's door (issue 15): an `access-lost` incident, one per loss (called on every probe while lost; idempotent). */
  onAccessLost?(input: { tenantId: string; kid: string; vaultUrl: string; lostAt: string }): Promise<void>;
}

export interface ProbeReport {
  probed: number;
  ok: number;
  failed: number;
  accessLost: number;
  rekeyed: number;
}

export async function probeByokTenants(deps: ProbeDeps, pageSize = 50): Promise<ProbeReport> {
  const report: ProbeReport = { probed: 0, ok: 0, failed: 0, accessLost: 0, rekeyed: 0 };
  if (!deps.tenants.byokPage) return report;
  let continuation: string | undefined;
  do {
    const page = await deps.tenants.byokPage({ maxItems: pageSize, ...(continuation ? { continuation } : {}) });
    for (const tenant of page.items) {
      try {
        await probeTenant(deps, tenant, report);
      } catch (e) {
        // One tenant's trouble never stops the others' probes.
        deps.log.warn('Access probe of a BYOK tenant failed', { tenantId: tenant.tenantId, error: describeError(e) });
      }
    }
    continuation = page.continuation;
  } while (continuation);
  return report;
}

async function probeTenant(deps: ProbeDeps, tenant: Tenant, report: ProbeReport): Promise<void> {
  const v = tenant.activeKid ? versionOf(tenant, tenant.activeKid) : undefined;
  if (!v || tenant.state === 'revoked') return;
  const keys = deps.service.keysOf(tenant);
  const outcome: ProbeOutcome = await probeKey(keys, { vaultUrl: v.vaultUrl, name: v.name, version: v.version });
  report.probed++;
  if (outcome === 'ok') report.ok++;
  if (outcome === 'forbidden') report.failed++;
  const after = await record(deps, tenant.tenantId, outcome);
  if (after?.state === 'access-lost') {
    if (tenant.state !== 'access-lost') {
      report.accessLost++;
      deps.log.warn('BYOK tenant lost access to its key', { tenantId: tenant.tenantId, kid: v.kid, failingSince: after.access?.failingSince });
    }
    // Emitted on every probe while lost: create-only, so one notice per loss (and none dropped by a crash).
    await deps.notices?.emit({
      tenantId: tenant.tenantId,
      transition: 'accessLost',
      version: `${v.kid}@${after.access?.lostAt ?? ''}`,
      data: { topology: 'byok', kid: v.kid, failingSince: after.access?.failingSince ?? null, lostAt: after.access?.lostAt ?? null, adminContacts: after.adminContacts },
    });
    await deps.onAccessLost?.({ tenantId: tenant.tenantId, kid: v.kid, vaultUrl: v.vaultUrl, lostAt: after.access?.lostAt ?? '' });
    return;
  }
  if (outcome === 'ok' && tenant.state === 'access-lost') deps.log.info('BYOK tenant has access to its key again', { tenantId: tenant.tenantId, kid: v.kid });
  if (outcome !== 'ok' || !after || after.state === 'rekey-required') return;
  // A new version of the key, created by the customer: a rekey to it.
  const latest = await keys.get({ vaultUrl: v.vaultUrl, name: v.name }).catch(() => undefined);
  if (!latest || latest.properties.version === v.version || !latest.properties.enabled || versionOf(after, `${v.vaultUrl}/keys/${v.name}/${latest.properties.version}`)) return;
  try {
    const { started } = await deps.rekeys.rekey(tenant.tenantId, {
      reason: 'the customer created a new version of the key',
      keyUrl: `${v.vaultUrl}/keys/${v.name}`,
      fromKid: v.kid,
      requestedBy: 'keyturn',
    });
    if (started) report.rekeyed++;
    deps.log.info('BYOK tenant rekeyed to the new version the customer created', { tenantId: tenant.tenantId, fromKid: v.kid, started });
  } catch (e) {
    if (!isKeyturnError(e, 'VALIDATION_FAILED')) throw e;
    deps.log.warn('A new version of a BYOK key is not used: it fails the onboarding checks', { tenantId: tenant.tenantId, error: describeError(e) });
  }
}

/** The probe's result in the tenant document (ETag-guarded; unchanged documents are not written). */
async function record(deps: ProbeDeps, tenantId: string, outcome: ProbeOutcome): Promise<Tenant | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await deps.tenants.read(tenantId);
    if (!stored) return undefined;
    const next = applyProbe(stored.doc, outcome, await deps.clock.now(), deps.windowMs);
    if (next === stored.doc) return next;
    try {
      return (await deps.tenants.replace(next, stored.etag)).doc;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new ConcurrencyConflict('changed', tenantId);
}
