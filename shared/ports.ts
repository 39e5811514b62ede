/**
 * Ports shared by every life cycle. Each has one production adapter in
 * `shared/adapters`; tests hand in plain objects. Domain-specific ports live next to
 * their service (e.g. `shared/services/renewal/ports.ts`).
 */

/** A stored document and the ETag that guards its next write. */
export interface Versioned<T> {
  doc: T;
  etag: string;
}

/** Time as the app sees it; in local mode it follows the Key Vault emulator's movable clock. */
export interface Clock {
  now(): Promise<Date>;
}

/** Structured log lines; never pass secret values or key material. */
export interface Logger {
  info(message: string, props?: Record<string, unknown>): void;
  warn(message: string, props?: Record<string, unknown>): void;
  error(message: string, props?: Record<string, unknown>): void;
}

/** Keyturn's own notifications (an Event Grid custom topic). */
export interface Notifier {
  publish(event: { eventType: string; subject: string; data: Record<string, unknown>; id?: string }): Promise<void>;
}

/** Test-only fault points: throws when `point` is armed (setting KEYTURN_FAULTS). */
export interface FaultPoints {
  hit(point: string): void;
}

export const noFaults: FaultPoints = { hit() {} };

/**
 * Work for queue-triggered functions (long jobs run as idempotent batches). A job is
 * delivered at least once; the trigger retries a failing one and then poisons it.
 */
export interface JobQueue {
  enqueue(queue: string, job: Record<string, unknown>, options?: { visibleAfterSeconds?: number }): Promise<void>;
}
