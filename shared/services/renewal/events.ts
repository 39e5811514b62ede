/**
 * Renewal's handler in the Key Vault event intake: a managed secret's SecretNearExpiry
 * or SecretExpired starts its renewal. Other objects and event types, and secrets
 * Keyturn does not manage, are not renewal's.
 */
import type { KeyVaultEventHandler } from '../events/ports';
import { eventProps } from '../events/intake';
import type { RenewalContext } from './context';
import { NOT_MANAGED_REASONS, startRenewal } from './requests';

export const RENEWAL_HANDLER = 'renewal';
const RENEWING_KINDS = new Set(['SecretNearExpiry', 'SecretExpired']);

export function renewalEventHandler(c: RenewalContext): KeyVaultEventHandler {
  return {
    name: RENEWAL_HANDLER,
    async handle({ vaultAlias, event }, log) {
      if (event.objectType !== 'Secret') return { answer: 'not-mine' };
      if (!RENEWING_KINDS.has(event.kind)) return { answer: 'not-mine', reason: 'event type not handled' };
      const trigger = event.kind as 'SecretNearExpiry' | 'SecretExpired';
      const result = await startRenewal(c, { vault: vaultAlias, name: event.objectName, version: event.version, trigger });
      log.info(`Key Vault event ${event.kind}: ${result.outcome}`, {
        ...eventProps(vaultAlias, event),
        ...('reason' in result ? { reason: result.reason } : { rotationId: result.rotationId }),
      });
      if (result.outcome === 'ignored') {
        return NOT_MANAGED_REASONS.has(result.reason) ? { answer: 'not-mine', reason: result.reason } : { answer: 'handled', outcome: 'ignored', detail: { reason: result.reason } };
      }
      return { answer: 'handled', outcome: result.outcome, detail: { rotationId: result.rotationId } };
    },
  };
}
