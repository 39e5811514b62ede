import type { Logger } from '../../ports';
import type { KeyEventHandler } from '../renewal/ports';
import type { SigningKeyService } from './signingKeys';

const EXPIRY_KINDS = new Set(['KeyNearExpiry', 'KeyExpired']);

/**
 * Routes Key Vault key events (received by `keyVaultEvents`) to the signing-key life
 * cycle: an expiring signing key brings its rollover forward. Other key events are
 * acknowledged and logged.
 */
export function signingKeyEventHandler(service: (log: Logger) => SigningKeyService): KeyEventHandler {
  return {
    async handle({ vault, event }, log) {
      const props = { vault, type: event.type, name: event.objectName, version: event.version };
      if (!EXPIRY_KINDS.has(event.kind)) {
        log.info('Key event acknowledged; not one Keyturn acts on', props);
        return;
      }
      const outcome = await service(log).onKeyExpiring({
        vaultAlias: vault,
        name: event.objectName,
        version: event.version,
        eventType: event.kind,
      });
      log.info(outcome === 'handled' ? 'Signing key expiry handled' : 'Key event acknowledged; key not managed by Keyturn', props);
    },
  };
}
