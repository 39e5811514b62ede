/**
 * Tenant keys' handler in the Key Vault event intake: a service-managed tenant version
 * nearing (or past) its expiry starts a rekey with `fromKid` = that version, so a
 * redelivered event is a no-op (the rekey's id is derived from it). Other keys are
 * not this life cycle's.
 */
import { isKeyturnError } from '../../errors';
import type { Logger } from '../../ports';
import type { KeyVaultEventHandler } from '../events/ports';
import type { RekeyService } from './rekeyService';
import type { TenantService } from './tenantService';

export const TENANTS_HANDLER = 'tenant-keys';
const EXPIRY_KINDS = new Set(['KeyNearExpiry', 'KeyExpired']);
/** `tenant-{tenantId}-{8 hex}`: the names service-managed tenant keys get (`tenantKeyName`). */
const TENANT_KEY_NAME = /^tenant-([a-z0-9][a-z0-9-]{2,62})-[0-9a-f]{8}$/;

export function tenantKeyEventHandler(deps: {
  tenants: (log: Logger) => TenantService;
  rekeys: (log: Logger) => RekeyService;
  /** The URL of a settings vault by alias (undefined when unknown). */
  vaultUrlOf: (vaultAlias: string) => string | undefined;
}): KeyVaultEventHandler {
  return {
    name: TENANTS_HANDLER,
    async handle({ vaultAlias, event }, log) {
      if (event.objectType !== 'Key' || !EXPIRY_KINDS.has(event.kind)) return { answer: 'not-mine' };
      const tenantId = TENANT_KEY_NAME.exec(event.objectName.toLowerCase())?.[1];
      if (!tenantId) return { answer: 'not-mine' };
      const vaultUrl = deps.vaultUrlOf(vaultAlias);
      const tenant = await deps.tenants(log).get(tenantId).catch((e: unknown) => {
        if (isKeyturnError(e, 'NOT_FOUND')) return undefined;
        throw e; // a dependency down: the webhook answers 5xx and Event Grid redelivers
      });
      const version = tenant?.versions.find(
        (v) => v.vaultUrl === vaultUrl && v.name.toLowerCase() === event.objectName.toLowerCase() && v.version.toLowerCase() === event.version,
      );
      if (!tenant || !version || tenant.topology !== 'service-managed') return { answer: 'not-mine', reason: 'key not managed by Keyturn' };
      const props = { tenantId, kid: version.kid, type: event.kind };
      if (tenant.activeKid !== version.kid) {
        log.info('Tenant key event acknowledged; that version no longer protects new content', props);
        return { answer: 'handled', outcome: 'already-rekeyed' };
      }
      const { started } = await deps.rekeys(log).rekey(tenantId, { reason: `Key Vault ${event.kind}`, fromKid: version.kid, requestedBy: 'keyturn' });
      log.info('Tenant key rekeyed on its expiry event', { ...props, started });
      return { answer: 'handled', outcome: started ? 'rekeyed' : 'rekey-already-started' };
    },
  };
}
