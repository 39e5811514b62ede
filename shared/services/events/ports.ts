/**
 * The Key Vault event intake's contract with the life cycles: each registers a handler
 * that answers whether the event was its own. The intake (`intake.ts`) normalises,
 * dead-letters and routes; a handler never sees a malformed or spoofed event.
 */
import type { KeyVaultEvent } from '../../domain/keyVaultEvent';
import type { Logger } from '../../ports';

export interface RoutedEvent {
  /** The vault's alias in settings (KEYTURN_VAULTS), or a registered customer vault's. */
  vaultAlias: string;
  event: KeyVaultEvent;
}

/** `handled`: this life cycle manages the object (`outcome` says what it did); `not-mine`: ask the next handler. */
export type HandlerAnswer = { answer: 'handled'; outcome: string; detail?: Record<string, unknown> } | { answer: 'not-mine' };

export interface KeyVaultEventHandler {
  /** Stable name, for logs and the intake's outcome. */
  readonly name: string;
  /** Throws only when a dependency is down (the webhook then answers 5xx and Event Grid retries). */
  handle(routed: RoutedEvent, log: Logger): Promise<HandlerAnswer>;
}
