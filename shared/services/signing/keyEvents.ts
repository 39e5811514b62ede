import type { Logger } from '../../ports';
import type { KeyVaultEventHandler } from '../events/ports';
import type { SigningKeyService } from './signingKeys';

export const SIGNING_HANDLER = 'signing';
const EXPIRY_KINDS = new Set(['KeyNearExpiry', 'KeyExpired']);

/**
 * Signing's handler in the Key Vault event intake (`services/events/intake.ts`): an
 * expiring signing key brings its rollover forward. Other key events, and keys that
 * are not Keyturn's signing keys, are not signing's (the intake acknowledges them).
 */
export function signingKeyEventHandler(service: (log: Logger) => SigningKeyService): KeyVaultEventHandler {
  return {
    name: SIGNING_HANDLER,
    async handle({ vaultAlias, event }, log) {
      if (event.objectType !== 'Key') return { answer: 'not-mine' };
      const props = { vault: vaultAlias, type: event.type, name: event.objectName, version: event.version };
      if (!EXPIRY_KINDS.has(event.kind)) {
        log.info('Key event acknowledged; not one Keyturn acts on', props);
        return { answer: 'not-mine', reason: 'event type not handled' };
      }
      const outcome = await service(log).onKeyExpiring({
        vaultAlias,
        name: event.objectName,
        version: event.version,
        eventType: event.kind,
      });
      if (outcome !== 'handled') {
        log.info('Key event acknowledged; key not managed by Keyturn', props);
        return { answer: 'not-mine', reason: 'key not managed by Keyturn' };
      }
      log.info('Signing key expiry handled', props);
      return { answer: 'handled', outcome: 'rollover-brought-forward' };
    },
  };
}
