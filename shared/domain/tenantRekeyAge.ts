/**
 * The optional rekey-after-days policy (KEYTURN_TENANT_REKEY_AFTER_DAYS), pure: which
 * tenants the tenant timer acts on. A service-managed tenant whose version in use was
 * activated more than N days ago is rekeyed (with `fromKid` = that version, so a second
 * run or host is a no-op); a BYOK one gets a RekeyNeeded notice instead (only the
 * customer can rekey their key). A tenant in a changeover, revoked, access-lost or
 * rekey-required is left alone: its key in use is new, or it has no usable one.
 */
import type { Tenant } from './tenantKeys';

export const DAY_MS = 86_400_000;

export type RekeyAgeAction = { action: 'rekey' | 'notify'; kid: string; activatedAt: string };

export function rekeyAgeAction(tenant: Tenant, now: Date, afterDays: number): RekeyAgeAction | undefined {
  if (tenant.state !== 'active' || !tenant.activeKid) return undefined;
  const v = tenant.versions.find((x) => x.kid === tenant.activeKid);
  const since = v?.activatedAt ?? v?.createdAt;
  if (!v || v.state !== 'active' || !since) return undefined;
  if (now.getTime() - Date.parse(since) <= afterDays * DAY_MS) return undefined;
  return { action: tenant.topology === 'byok' ? 'notify' : 'rekey', kid: v.kid, activatedAt: since };
}
