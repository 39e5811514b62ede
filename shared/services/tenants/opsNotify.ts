/**
 * Notifications of the tenant-key operations (backup, restore, export) on Keyturn's
 * topic, to the tenant's admin contacts. Ids are deterministic (the job or record and
 * what happened): a crash between publish and record republishes the same event, so
 * subscribers see it once. Never key material.
 */
import type { Tenant } from '../../domain/tenantKeys';
import type { Notifier } from '../../ports';

export const TENANT_OPS_EVENTS = {
  backedUp: 'Keyturn.TenantKeyBackedUp',
  restored: 'Keyturn.TenantKeyRestored',
  exportRequested: 'Keyturn.TenantKeyExportRequested',
  exported: 'Keyturn.TenantKeyExported',
} as const;

export type TenantOpsEvent = keyof typeof TENANT_OPS_EVENTS;

export function publishTenantEvent(notifier: Notifier, tenant: Pick<Tenant, 'tenantId' | 'adminContacts'>, event: TenantOpsEvent, id: string, data: Record<string, unknown>) {
  return notifier.publish({
    id: `${id}:${event}`,
    eventType: TENANT_OPS_EVENTS[event],
    subject: `/tenants/${tenant.tenantId}`,
    data: { tenantId: tenant.tenantId, adminContacts: tenant.adminContacts, ...data },
  });
}
