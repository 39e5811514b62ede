/**
 * Tenant keys' handler in the Key Vault event intake. A service-managed tenant version
 * nearing (or past) its expiry starts a rekey with `fromKid` = that version, so a
 * redelivered event is a no-op (the rekey's id is derived from it). A BYOK version's
 * (from a customer vault subscribed to Keyturn's webhook) is a
 * `Keyturn.TenantKeyRekeyNeeded` to the admins: only the customer can rekey; its id
 * derives from the version, so a redelivery is one notice. Other keys are not this
 * life cycle's.
 */
import { isKeyturnError } from '../../errors';
import type { Logger } from '../../ports';
import type { KeyVaultEventHandler } from '../events/ports';
import type { NoticeSink } from './notices';
import type { KeyClaimStore } from './ports';
import type { RekeyService } from './rekeyService';
import type { TenantService } from './tenantService';

export const TENANTS_HANDLER = 'tenant-keys';
const EXPIRY_KINDS = new Set(['KeyNearExpiry', 'KeyExpired']);
/** `tenant-{tenantId}-{8 hex}`: the names service-managed tenant keys get (`tenantKeyName`). */
const TENANT_KEY_NAME = /^tenant-([a-z0-9][a-z0-9-]{2,62})-[0-9a-f]{8}$/;

export function tenantKeyEventHandler(deps: {
  tenants: (log: Logger) => TenantService;
  rekeys: (log: Logger) => RekeyService;
  /** The URL of a settings (or customer) vault by alias (undefined when unknown). */
  vaultUrlOf: (vaultAlias: string) => string | undefined;
  /** BYOK: who holds a customer's key, and the notices (absent: BYOK events are not this handler's). */
  claims?: KeyClaimStore;
  notices?: (log: Logger) => NoticeSink;
}): KeyVaultEventHandler {
  return {
    name: TENANTS_HANDLER,
    async handle({ vaultAlias, event }, log) {
      if (event.objectType !== 'Key' || !EXPIRY_KINDS.has(event.kind)) return { answer: 'not-mine' };
      const vaultUrl = deps.vaultUrlOf(vaultAlias);
      const byokHolder = vaultUrl && deps.claims ? await deps.claims.holder({ vaultUrl, name: event.objectName }) : undefined;
      const tenantId = TENANT_KEY_NAME.exec(event.objectName.toLowerCase())?.[1] ?? byokHolder;
      if (!tenantId) return { answer: 'not-mine' };
      const tenant = await deps.tenants(log).get(tenantId).catch((e: unknown) => {
        if (isKeyturnError(e, 'NOT_FOUND')) return undefined;
        throw e; // a dependency down: the webhook answers 5xx and Event Grid redelivers
      });
      const version = tenant?.versions.find(
        (v) => v.vaultUrl === vaultUrl && v.name.toLowerCase() === event.objectName.toLowerCase() && v.version.toLowerCase() === event.version,
      );
      if (!tenant || !version) return { answer: 'not-mine', reason: 'key not managed by Keyturn' };
      const props = { tenantId, kid: version.kid, type: event.kind };
      if (tenant.activeKid !== version.kid) {
        log.info('Tenant key event acknowledged; that version no longer protects new content', props);
        return { answer: 'handled', outcome: 'already-rekeyed' };
      }
      if (tenant.topology === 'byok') {
        if (!deps.notices) return { answer: 'not-mine', reason: 'BYOK notices are not configured' };
        await deps.notices(log).emit({
          tenantId,
          transition: 'rekeyNeeded',
          version: version.kid,
          data: { topology: 'byok', kid: version.kid, event: event.kind, expiresOn: version.expiresAt ?? null, adminContacts: tenant.adminContacts },
        });
        log.info('BYOK tenant key nears its expiry: the admins are asked to name a new key', props);
        return { answer: 'handled', outcome: 'rekey-needed' };
      }
      const { started } = await deps.rekeys(log).rekey(tenantId, { reason: `Key Vault ${event.kind}`, fromKid: version.kid, requestedBy: 'keyturn' });
      log.info('Tenant key rekeyed on its expiry event', { ...props, started });
      return { answer: 'handled', outcome: started ? 'rekeyed' : 'rekey-already-started' };
    },
  };
}
