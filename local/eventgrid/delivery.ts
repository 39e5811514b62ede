/**
 * Subscriptions, per-subscription delivery queues, retries and dead letters.
 *
 * Semantics (Azure's, see delivery-and-retry.md): at least once; only 200-204
 * is success; failures wait on a backoff schedule; after maxDeliveryAttempts or
 * the event TTL the batch is dead-lettered (kept here, inspectable). A
 * subscription delivers nothing until its endpoint passes the validation
 * handshake, which is retried until it does, so events published before the
 * subscriber started are queued, not dropped.
 */
import { randomUUID } from 'node:crypto';
import { toCloudEvent } from './cloudEvents';
import type { StoredEvent } from './envelope';
import type { OutboundClient } from './httpClient';
import { matchesFilter, parseSubscriptionInput } from './subscriptions';
import type {
  DeadLetter,
  DeadLetterReason,
  DeliveryAttempt,
  DeliveryRecord,
  DeliverySchema,
  Subscription,
  SubscriptionInput,
} from './types';
import { handshake } from './validation';

/** Azure: 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, then hourly. */
export const DEFAULT_RETRY_DELAYS_MS = [10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000];
export const DEFAULT_MAX_DELIVERY_ATTEMPTS = 30;
export const DEFAULT_EVENT_TTL_MS = 24 * 3600 * 1000;

/** Finished records kept for inspection; the oldest finished ones go first. */
const MAX_FINISHED_RECORDS = 10_000;
const MAX_DEAD_LETTERS = 10_000;

export interface EngineOptions {
  client: OutboundClient;
  delaysMs: number[];
  maxDeliveryAttempts: number;
  eventTtlMs: number;
  validationRetryMs: number;
  deliveryTimeoutMs: number;
  concurrencyPerSubscription: number;
  /** Topic id used in validation events of '*' subscriptions. */
  customTopicId: string;
  validationUrl: (subscription: string, code: string) => string;
  log: (line: string) => void;
}

interface SubState {
  sub: Subscription;
  /** Bumped whenever a new handshake loop starts, so stale loops stop. */
  generation: number;
  inFlight: number;
  validationTimer?: NodeJS.Timeout;
  /** Validation code of the current handshake loop, for the manual validationUrl. */
  validationCode?: string;
  loggedFailure?: string;
}

interface Item {
  record: DeliveryRecord;
  events: StoredEvent[];
  createdAt: number;
  dueAt: number;
  inFlight: boolean;
  /** The subscription was deleted while this batch was in flight. */
  orphaned: boolean;
}

/** Retry delay after failed attempt n (1-based); the last entry repeats. */
export function retryDelay(delaysMs: readonly number[], attempt: number): number {
  if (delaysMs.length === 0) return 0;
  return delaysMs[Math.min(attempt - 1, delaysMs.length - 1)] ?? 0;
}

export function isSuccess(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status <= 204;
}

/** Azure's lastDeliveryOutcome vocabulary, approximately. */
export function deliveryOutcome(attempt: DeliveryAttempt | undefined): string | undefined {
  if (!attempt) return undefined;
  if (attempt.statusCode === undefined) return /timed out/.test(attempt.error ?? '') ? 'TimedOut' : 'GenericError';
  const byStatus: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 413: 'RequestEntityTooLarge', 503: 'Busy' };
  return byStatus[attempt.statusCode] ?? 'GenericError';
}

export function payloadFor(schema: DeliverySchema, events: readonly StoredEvent[]): unknown[] {
  return schema === 'CloudEventSchemaV1_0'
    ? events.map((e) => e.cloudEvent ?? toCloudEvent(e.event))
    : events.map((e) => e.event);
}

function normalize(input: SubscriptionInput, createdAt: string): Subscription {
  const sub: Subscription = {
    name: input.name,
    topic: input.topic,
    endpoint: input.endpoint,
    schema: input.schema ?? 'EventGridSchema',
    isSubjectCaseSensitive: input.isSubjectCaseSensitive ?? false,
    maxEventsPerBatch: input.maxEventsPerBatch ?? 1,
    validation: 'validating',
    createdAt,
  };
  if (input.includedEventTypes) sub.includedEventTypes = [...input.includedEventTypes];
  if (input.subjectBeginsWith !== undefined) sub.subjectBeginsWith = input.subjectBeginsWith;
  if (input.subjectEndsWith !== undefined) sub.subjectEndsWith = input.subjectEndsWith;
  return sub;
}

export class DeliveryEngine {
  private readonly subs = new Map<string, SubState>();
  private readonly active = new Map<string, Item>();
  private readonly records: DeliveryRecord[] = [];
  private readonly dead: DeadLetter[] = [];
  private readonly drainWaiters = new Set<() => void>();
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private closed = false;

  constructor(private readonly opts: EngineOptions) {}

  /** Adds or replaces (by name). A new endpoint or schema means a new handshake. */
  addSubscription(input: unknown): Subscription {
    const parsed = parseSubscriptionInput(input);
    const existing = this.subs.get(parsed.name);
    const sub = normalize(parsed, existing?.sub.createdAt ?? new Date().toISOString());
    if (existing && existing.sub.endpoint === sub.endpoint && existing.sub.schema === sub.schema) {
      sub.validation = existing.sub.validation;
      if (existing.sub.validatedAt) sub.validatedAt = existing.sub.validatedAt;
      if (existing.sub.lastValidationError) sub.lastValidationError = existing.sub.lastValidationError;
      existing.sub = sub;
      this.opts.log(`subscription ${sub.name} updated (filters)`);
      this.pump();
      return { ...sub };
    }
    const state: SubState = existing ?? { sub, generation: 0, inFlight: 0 };
    state.sub = sub;
    this.subs.set(sub.name, state);
    this.opts.log(`subscription ${sub.name} ${existing ? 'replaced' : 'added'}: ${sub.topic} -> ${sub.endpoint} (${sub.schema})`);
    this.startValidation(state);
    return { ...sub };
  }

  /** Deletes a subscription; its undelivered batches are dead-lettered (SubscriptionDeleted). */
  removeSubscription(name: string): boolean {
    const state = this.subs.get(name);
    if (!state) return false;
    state.generation++;
    if (state.validationTimer) clearTimeout(state.validationTimer);
    this.subs.delete(name);
    for (const item of [...this.active.values()]) {
      if (item.record.subscription !== name) continue;
      if (item.inFlight) item.orphaned = true;
      else this.deadLetter(item, 'SubscriptionDeleted');
    }
    this.opts.log(`subscription ${name} deleted`);
    this.pump();
    return true;
  }

  subscriptions(): Subscription[] {
    return [...this.subs.values()].map((s) => structuredClone(s.sub));
  }

  /** Fans events out to matching subscriptions, in batches of maxEventsPerBatch. */
  publish(topic: string, events: readonly StoredEvent[]): number {
    if (this.closed) throw new Error('local Event Grid is closed');
    let batches = 0;
    for (const state of this.subs.values()) {
      const { sub } = state;
      const matching = events.filter((e) => matchesFilter(sub, { topic, eventType: e.event.eventType, subject: e.event.subject }));
      for (let i = 0; i < matching.length; i += sub.maxEventsPerBatch) {
        this.enqueue(state, topic, matching.slice(i, i + sub.maxEventsPerBatch));
        batches++;
      }
    }
    if (batches === 0) this.opts.log(`${events.length} event(s) on ${topic} matched no subscription (dropped, as Azure does)`);
    this.pump();
    return batches;
  }

  deliveries(subscription?: string): DeliveryRecord[] {
    return this.records.filter((r) => subscription === undefined || r.subscription === subscription).map((r) => structuredClone(r));
  }

  deadLetters(): DeadLetter[] {
    return this.dead.map((d) => structuredClone(d));
  }

  /** Marks a subscription validated through the manual validationUrl (GET). */
  manualValidate(name: string, code: string): boolean {
    const state = this.subs.get(name);
    if (!state || state.validationCode === undefined || state.validationCode.toLowerCase() !== code.toLowerCase()) return false;
    if (state.sub.validation !== 'validated') this.markValidated(state, state.generation, 'validationUrl');
    return true;
  }

  /** Resolves when no batch is pending, validating or in flight. */
  drain(timeoutMs?: number): Promise<void> {
    if (this.active.size === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.drainWaiters.add(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.drainWaiters.delete(waiter);
          const left = [...this.active.values()].map((i) => `${i.record.subscription}:${i.record.state}(${i.record.attempts} attempts)`);
          reject(new Error(`drain timed out after ${timeoutMs} ms; still open: ${left.join(', ')}`));
        }, timeoutMs);
        timer.unref();
      }
    });
  }

  close(): void {
    this.closed = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    for (const state of this.subs.values()) {
      state.generation++;
      if (state.validationTimer) clearTimeout(state.validationTimer);
    }
    // Nobody should hang on a grid that is gone.
    for (const waiter of this.drainWaiters) waiter();
    this.drainWaiters.clear();
  }

  // ---- internals ----

  private enqueue(state: SubState, topic: string, events: StoredEvent[]): void {
    const now = Date.now();
    const record: DeliveryRecord = {
      id: randomUUID(),
      subscription: state.sub.name,
      endpoint: state.sub.endpoint,
      schema: state.sub.schema,
      topic,
      eventIds: events.map((e) => e.event.id),
      payload: payloadFor(state.sub.schema, events),
      state: state.sub.validation === 'validated' ? 'pending' : 'validating',
      attempts: 0,
      history: [],
      publishedAt: new Date(now).toISOString(),
    };
    this.records.push(record);
    this.active.set(record.id, { record, events, createdAt: now, dueAt: now, inFlight: false, orphaned: false });
    this.trimRecords();
  }

  private trimRecords(): void {
    let excess = this.records.length - MAX_FINISHED_RECORDS - this.active.size;
    for (let i = 0; excess > 0 && i < this.records.length; ) {
      const r = this.records[i];
      if (r && (r.state === 'delivered' || r.state === 'deadlettered')) {
        this.records.splice(i, 1);
        excess--;
      } else i++;
    }
  }

  private startValidation(state: SubState): void {
    const generation = ++state.generation;
    if (state.validationTimer) clearTimeout(state.validationTimer);
    state.loggedFailure = undefined;
    const code = randomUUID();
    state.validationCode = code;
    const validationUrl = this.opts.validationUrl(state.sub.name, code);
    const attempt = async (): Promise<void> => {
      if (this.closed || state.generation !== generation) return;
      // Read state.sub each time: a filter-only update replaces the object but keeps this loop.
      const result = await handshake(state.sub, {
        client: this.opts.client,
        timeoutMs: this.opts.deliveryTimeoutMs,
        topic: state.sub.topic === '*' ? this.opts.customTopicId : state.sub.topic,
        code,
        validationUrl,
      });
      if (this.closed || state.generation !== generation) return;
      const sub = state.sub;
      if (result.ok) {
        this.markValidated(state, generation, sub.schema === 'CloudEventSchemaV1_0' ? 'OPTIONS handshake' : 'validation event');
        return;
      }
      sub.lastValidationError = result.reason;
      // Log once per distinct reason: a host that starts later would otherwise flood the log.
      if (state.loggedFailure !== result.reason) {
        state.loggedFailure = result.reason;
        this.opts.log(`subscription ${sub.name}: handshake with ${sub.endpoint} failed (${result.reason}); retrying every ${this.opts.validationRetryMs} ms, events are queued`);
      }
      state.validationTimer = setTimeout(() => void attempt(), this.opts.validationRetryMs);
      state.validationTimer.unref();
    };
    void attempt();
  }

  private markValidated(state: SubState, generation: number, how: string): void {
    if (state.generation !== generation) return;
    state.generation++; // stop any retry loop still scheduled
    if (state.validationTimer) clearTimeout(state.validationTimer);
    state.sub.validation = 'validated';
    state.sub.validatedAt = new Date().toISOString();
    delete state.sub.lastValidationError;
    this.opts.log(`subscription ${state.sub.name}: endpoint validated (${how})`);
    this.pump();
  }

  /** Starts what is due, expires what outlived its TTL, and sets one timer for the next thing. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let nextWake = Infinity;
    for (const item of [...this.active.values()]) {
      if (item.inFlight) continue;
      const expiresAt = item.createdAt + this.opts.eventTtlMs;
      if (now >= expiresAt) {
        this.deadLetter(item, 'TimeToLiveExceeded');
        continue;
      }
      const state = this.subs.get(item.record.subscription);
      if (!state) {
        this.deadLetter(item, 'SubscriptionDeleted');
        continue;
      }
      if (state.sub.validation !== 'validated') {
        item.record.state = 'validating';
        nextWake = Math.min(nextWake, expiresAt);
        continue;
      }
      item.record.state = 'pending';
      if (item.dueAt > now) {
        nextWake = Math.min(nextWake, item.dueAt, expiresAt);
        continue;
      }
      // A full subscription is re-pumped when one of its deliveries finishes.
      if (state.inFlight >= this.opts.concurrencyPerSubscription) continue;
      void this.dispatch(item, state);
    }
    this.scheduleWake(nextWake);
    this.notifyDrain();
  }

  private scheduleWake(at: number): void {
    if (at === this.wakeAt && this.wakeTimer) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = at;
    if (at === Infinity) return;
    // setTimeout caps at ~24.8 days; pump re-arms after an early wake.
    const delay = Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump();
    }, delay);
    this.wakeTimer.unref();
  }

  private async dispatch(item: Item, state: SubState): Promise<void> {
    const { record } = item;
    const sub = state.sub;
    item.inFlight = true;
    state.inFlight++;
    const attemptNo = record.attempts + 1;
    record.endpoint = sub.endpoint;
    record.schema = sub.schema;
    record.payload = payloadFor(sub.schema, item.events);
    delete record.nextAttemptAt;
    const first = item.events[0]?.event;
    const headers: Record<string, string> = {
      'Content-Type': sub.schema === 'CloudEventSchemaV1_0' ? 'application/cloudevents-batch+json; charset=utf-8' : 'application/json',
      'aeg-event-type': 'Notification',
      // Azure sends the subscription name upper-cased.
      'aeg-subscription-name': sub.name.toUpperCase(),
      // Number of attempts made before this one (0 on first delivery).
      'aeg-delivery-count': String(record.attempts),
      'aeg-metadata-version': sub.schema === 'CloudEventSchemaV1_0' ? '1.0' : '1',
    };
    if (sub.schema === 'EventGridSchema' && first?.dataVersion !== undefined) headers['aeg-data-version'] = first.dataVersion;
    if (item.events.length === 1 && first) headers['aeg-output-event-id'] = first.id;
    const started = Date.now();
    const attempt: DeliveryAttempt = { attempt: attemptNo, at: new Date(started).toISOString(), endpoint: sub.endpoint, durationMs: 0 };
    try {
      const res = await this.opts.client.send({
        method: 'POST',
        url: sub.endpoint,
        headers,
        body: JSON.stringify(record.payload),
        timeoutMs: this.opts.deliveryTimeoutMs,
      });
      attempt.statusCode = res.status;
    } catch (err) {
      attempt.error = (err as Error).message;
    }
    attempt.durationMs = Date.now() - started;
    item.inFlight = false;
    state.inFlight--;
    if (this.closed) return;
    record.attempts = attemptNo;
    record.history.push(attempt);
    const outcome = attempt.statusCode !== undefined ? `HTTP ${attempt.statusCode}` : attempt.error ?? 'error';
    if (isSuccess(attempt.statusCode)) {
      record.state = 'delivered';
      record.deliveredAt = new Date().toISOString();
      this.active.delete(record.id);
      this.opts.log(`delivered ${item.events.length} event(s) to ${sub.name} (attempt ${attemptNo}, ${outcome})`);
    } else if (item.orphaned) {
      this.deadLetter(item, 'SubscriptionDeleted');
    } else if (attemptNo >= this.opts.maxDeliveryAttempts) {
      this.deadLetter(item, 'MaxDeliveryAttemptsExceeded');
    } else {
      const delay = retryDelay(this.opts.delaysMs, attemptNo);
      item.dueAt = Date.now() + delay;
      record.nextAttemptAt = new Date(item.dueAt).toISOString();
      record.state = 'pending';
      this.opts.log(`delivery to ${sub.name} failed (attempt ${attemptNo}, ${outcome}); retry in ${delay} ms`);
    }
    this.pump();
  }

  private deadLetter(item: Item, reason: DeadLetterReason): void {
    const { record } = item;
    record.state = 'deadlettered';
    record.deadLetterReason = reason;
    delete record.nextAttemptAt;
    this.active.delete(record.id);
    const last = record.history[record.history.length - 1];
    for (const stored of item.events) {
      const letter: DeadLetter = {
        subscription: record.subscription,
        deliveryId: record.id,
        topic: record.topic,
        event: stored.event,
        deadLetterReason: reason,
        deliveryAttempts: record.attempts,
        publishTime: record.publishedAt,
      };
      const outcome = deliveryOutcome(last);
      if (outcome !== undefined) letter.lastDeliveryOutcome = outcome;
      if (last?.statusCode !== undefined) letter.lastHttpStatusCode = last.statusCode;
      if (last) letter.lastDeliveryAttemptTime = last.at;
      this.dead.push(letter);
    }
    if (this.dead.length > MAX_DEAD_LETTERS) this.dead.splice(0, this.dead.length - MAX_DEAD_LETTERS);
    this.opts.log(`dead-lettered ${item.events.length} event(s) for ${record.subscription}: ${reason} after ${record.attempts} attempt(s)`);
  }

  private notifyDrain(): void {
    if (this.active.size > 0 || this.drainWaiters.size === 0) return;
    for (const waiter of this.drainWaiters) waiter();
    this.drainWaiters.clear();
  }
}
