/**
 * The Key Vault event intake's contract with the life cycles: each registers a handler
 * that answers whether the event was its own. The intake (`intake.ts`) normalises,
 * dead-letters and routes; a handler never sees a malformed or spoofed event.
 */
import type { EventProjection, KeyVaultEvent } from '../../domain/keyVaultEvent';
import type { Logger } from '../../ports';

export interface RoutedEvent {
  /** The vault's alias in settings (KEYTURN_VAULTS), or a registered customer vault's. */
  vaultAlias: string;
  event: KeyVaultEvent;
}

/**
 * `handled`: this life cycle manages the object (`outcome` says what it did); `not-mine`:
 * ask the next handler (`reason`, when given, is what the intake reports if none takes it).
 */
export type HandlerAnswer = { answer: 'handled'; outcome: string; detail?: Record<string, unknown> } | { answer: 'not-mine'; reason?: string };

export interface KeyVaultEventHandler {
  /** Stable name, for logs and the intake's outcome. */
  readonly name: string;
  /** Throws only when a dependency is down (the webhook then answers 5xx and Event Grid retries). */
  handle(routed: RoutedEvent, log: Logger): Promise<HandlerAnswer>;
}

/**
 * A refused event (document in the `deadLetters` container, partitioned by `source`).
 * It keeps a projection of the event, never its `data` values: the raw event can be
 * matched by its SHA-256 and size (e.g. against Event Grid's own logs).
 */
export interface DeadLetter {
  id: string;
  /** Topic/source the event claimed (cut to 300 characters), or `unknown`. */
  source: string;
  reason: 'malformed' | 'oversized' | 'spoofed' | 'unsupported';
  /** Why it was refused: the field and rule, in Keyturn's words. */
  detail: string;
  receivedAt: string;
  /** Size of the event as JSON, in bytes (null when it cannot be serialised). */
  bytes: number | null;
  /** SHA-256 (hex) of the event as JSON (null when it cannot be serialised). */
  sha256: string | null;
  event: EventProjection;
}

/**
 * The stored document: the first refused event of a burst from one source (its fields
 * as above), and what the burst held in all. A flood of junk in one delivery is a
 * handful of these, not a document per event.
 */
export interface DeadLetterRecord extends DeadLetter {
  /** How many refused events this record stands for (1 for a lone event). */
  count: number;
  /** The refused events by reason (they add up to `count`). */
  reasons: Partial<Record<DeadLetter['reason'], number>>;
  /** The next refused events after the first, as recorded (at most 19): the rest are only counted. */
  more: Omit<RefusedEvent, 'source'>[];
}

/** A refused event as the intake hands it over; the store stamps `receivedAt` (one clock read per record). */
export type RefusedEvent = Omit<DeadLetter, 'receivedAt'>;

export interface DeadLetterStore {
  /** Resolves once the letter is stored (possibly summarised with others); idempotent per id. */
  record(letter: RefusedEvent): Promise<void>;
}
