/**
 * The one Key Vault event intake (the `keyVaultEvents` webhook): normalises a delivered
 * event (`domain/keyVaultEvent.ts`), refuses what is malformed, oversized, unsupported
 * or not from one of Keyturn's vaults as a dead letter, and offers the rest to the
 * registered handlers in turn until one answers `handled`. Renewal and signing
 * register; tenant keys and key sets will.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type KeyVaultEvent, byteSize, projectEvent, readKeyVaultEvent, resolveVaultAlias, vaultNameOfTopic } from '../../domain/keyVaultEvent';
import type { Clock, Logger } from '../../ports';
import type { DeadLetter, DeadLetterStore, KeyVaultEventHandler, RefusedEvent } from './ports';

export interface IntakeSettings {
  /** Vault alias → URL (KEYTURN_VAULTS). */
  vaults: Record<string, string>;
  /** Event VaultName → vault alias (KEYTURN_EVENT_VAULT_NAMES). */
  eventVaultNames: Record<string, string>;
}

export interface IntakeDeps {
  /** Stamps `receivedAt` itself, once per record: a clock read per refused event made junk floods slow. */
  deadLetters: DeadLetterStore;
  /** Not read per event (the local clock is an HTTP call to the emulator). */
  clock: Clock;
  log: Logger;
  settings: IntakeSettings;
}

export type IntakeOutcome =
  | { outcome: 'dead-lettered'; reason: DeadLetter['reason'] }
  | { outcome: 'ignored'; reason: string }
  | { outcome: 'handled'; handler: string; result: string; detail?: Record<string, unknown> };

export const eventProps = (vaultAlias: string, e: KeyVaultEvent) => ({ vault: vaultAlias, type: e.kind, name: e.objectName, version: e.version, eventId: e.id });

export class KeyVaultEventIntake {
  // A Map: handler names never meet plain-object lookups.
  private readonly handlers = new Map<string, KeyVaultEventHandler>();

  constructor(private readonly deps: IntakeDeps) {}

  /** Handlers are asked in registration order. */
  register(handler: KeyVaultEventHandler): this {
    if (this.handlers.has(handler.name)) throw new Error(`event handler '${handler.name}' is registered twice`);
    this.handlers.set(handler.name, handler);
    return this;
  }

  /** Handles one delivered event. Throws only when a dependency is down (so Event Grid retries). */
  async receive(raw: unknown): Promise<IntakeOutcome> {
    const { log, settings } = this.deps;
    const bytes = byteSize(raw);
    const reading = readKeyVaultEvent(raw, bytes);
    if (!reading.ok) return this.deadLetter(raw, bytes, reading.reason, reading.detail);

    const topic = 'event' in reading ? reading.event.topic : reading.topic;
    const vaultName = 'event' in reading ? reading.event.vaultName : vaultNameOfTopic(topic)!;
    const vaultAlias = resolveVaultAlias(vaultName, settings.vaults, settings.eventVaultNames);
    if (!vaultAlias) return this.deadLetter(raw, bytes, 'spoofed', `topic: vault '${vaultName}' is not one of Keyturn's vaults`);
    if (!('event' in reading)) {
      log.info('Key Vault event acknowledged; not one Keyturn acts on', { vault: vaultAlias, type: reading.type, id: reading.id });
      return { outcome: 'ignored', reason: 'event type not handled' };
    }
    const event = reading.event;
    let reason: string | undefined;
    for (const handler of this.handlers.values()) {
      const answer = await handler.handle({ vaultAlias, event }, log);
      if (answer.answer === 'handled') {
        return { outcome: 'handled', handler: handler.name, result: answer.outcome, ...(answer.detail ? { detail: answer.detail } : {}) };
      }
      reason ??= answer.reason;
    }
    log.info('Key Vault event acknowledged', { ...eventProps(vaultAlias, event), ...(reason ? { reason } : {}) });
    return { outcome: 'ignored', reason: reason ?? 'event type not handled' };
  }

  private async deadLetter(raw: unknown, bytes: number, reason: DeadLetter['reason'], detail: string): Promise<IntakeOutcome> {
    const event = projectEvent(raw);
    let json: string | undefined;
    try {
      json = JSON.stringify(raw);
    } catch {
      json = undefined; // cyclic: nothing to hash
    }
    const letter: RefusedEvent = {
      id: `${reason}:${event.id ?? randomUUID()}`.slice(0, 255).replace(/[/\\?#]/g, '_'),
      source: event.topic ?? 'unknown',
      reason,
      detail,
      bytes: Number.isFinite(bytes) ? bytes : null,
      sha256: json === undefined ? null : createHash('sha256').update(json).digest('hex'),
      event,
    };
    await this.deps.deadLetters.record(letter);
    this.deps.log.warn(`Event refused (${reason}) and recorded as a dead letter`, { detail, source: letter.source, eventId: event.id, deadLetterId: letter.id });
    return { outcome: 'dead-lettered', reason };
  }
}
