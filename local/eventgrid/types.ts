/**
 * Shared types of the local Event Grid. Shapes follow Azure's wire format
 * (Event Grid schema 2018-01-01 and CloudEvents 1.0 JSON) so the same handlers
 * work against the real service.
 */
import type { LocalTls } from '../tls';

/** An event in the Event Grid schema, as delivered (topic and metadataVersion stamped). */
export interface EventGridEvent {
  id: string;
  /** Full resource id of the topic; Event Grid stamps it, publishers may omit it. */
  topic?: string;
  subject: string;
  eventType: string;
  /** ISO-8601 UTC. */
  eventTime: string;
  data?: unknown;
  dataVersion?: string;
  metadataVersion?: string;
}

/** What `publish()` accepts: eventTime may be a Date, topic is set by the grid. */
export type EventGridEventInput = Omit<EventGridEvent, 'eventTime'> & { eventTime: string | Date };

/** CloudEvents 1.0 structured JSON. Extension attributes are kept as extra keys. */
export interface CloudEventV1 {
  id: string;
  source: string;
  type: string;
  specversion: '1.0';
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  data?: unknown;
  data_base64?: string;
  [extension: string]: unknown;
}

export type DeliverySchema = 'EventGridSchema' | 'CloudEventSchemaV1_0';

/** How callers describe a subscription (management API, env, code). */
export interface SubscriptionInput {
  name: string;
  /** Full topic resource id, or '*' for every topic. */
  topic: string;
  /** http(s) URL of the webhook. */
  endpoint: string;
  schema?: DeliverySchema;
  includedEventTypes?: string[];
  subjectBeginsWith?: string;
  subjectEndsWith?: string;
  /** Azure's default is case-insensitive subject matching. */
  isSubjectCaseSensitive?: boolean;
  maxEventsPerBatch?: number;
}

export type ValidationState = 'validating' | 'validated';

/** A subscription as the grid holds it (defaults applied, handshake state). */
export interface Subscription {
  name: string;
  topic: string;
  endpoint: string;
  schema: DeliverySchema;
  includedEventTypes?: string[];
  subjectBeginsWith?: string;
  subjectEndsWith?: string;
  isSubjectCaseSensitive: boolean;
  maxEventsPerBatch: number;
  validation: ValidationState;
  createdAt: string;
  validatedAt?: string;
  /** Last handshake failure, so a stuck subscription says why. */
  lastValidationError?: string;
}

export type DeliveryState = 'pending' | 'validating' | 'delivered' | 'deadlettered';

export interface DeliveryAttempt {
  /** 1-based attempt number. */
  attempt: number;
  at: string;
  endpoint: string;
  /** HTTP status, absent when the request failed before a response (refused, timeout). */
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/** One batch of events for one subscription and its delivery history. */
export interface DeliveryRecord {
  id: string;
  subscription: string;
  /** Endpoint of the subscription (the last one attempted, or the current one). */
  endpoint: string;
  schema: DeliverySchema;
  topic: string;
  eventIds: string[];
  /** The JSON body (array) sent, or that will be sent, in the subscription's schema. */
  payload: unknown[];
  state: DeliveryState;
  attempts: number;
  history: DeliveryAttempt[];
  publishedAt: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
  deadLetterReason?: DeadLetterReason;
}

export type DeadLetterReason = 'MaxDeliveryAttemptsExceeded' | 'TimeToLiveExceeded' | 'SubscriptionDeleted';

/** One dead-lettered event, with the properties Azure adds to a dead-letter blob. */
export interface DeadLetter {
  subscription: string;
  deliveryId: string;
  topic: string;
  /** The event in the Event Grid schema (the grid's internal form). */
  event: EventGridEvent;
  deadLetterReason: DeadLetterReason;
  deliveryAttempts: number;
  lastDeliveryOutcome?: string;
  lastHttpStatusCode?: number;
  publishTime: string;
  lastDeliveryAttemptTime?: string;
}

export interface RetryOptions {
  /** Wait after failed attempt n is delaysMs[n-1]; the last entry repeats. */
  delaysMs?: number[];
  maxDeliveryAttempts?: number;
  eventTtlMs?: number;
}

export interface EventGridOptions {
  /** Default 8444; 0 picks a free port. */
  port?: number;
  host?: '127.0.0.1';
  tls: LocalTls;
  topicKey?: string;
  customTopicName?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  subscriptions?: SubscriptionInput[];
  retry?: RetryOptions;
  /** Interval between validation handshake attempts while the endpoint is not answering. */
  validationRetryMs?: number;
  /** How long a subscriber has to answer a delivery or handshake. */
  deliveryTimeoutMs?: number;
  /** Parallel in-flight deliveries per subscription (Azure delivers concurrently). Default 4. */
  concurrencyPerSubscription?: number;
  /** Extra CA (PEM) trusted for https subscriber endpoints, besides the local CA and public roots. */
  caForEndpoints?: string;
  log?: (line: string) => void;
}

export interface LocalEventGrid {
  url: string;
  port: number;
  customTopic: { endpoint: string; key: string; topic: string };
  /** Publish into any topic (system topics such as a Key Vault's); stamps `topic`. */
  publish(topic: string, events: EventGridEventInput[]): void;
  addSubscription(sub: SubscriptionInput): Subscription;
  removeSubscription(name: string): void;
  subscriptions(): Subscription[];
  deliveries(subscription?: string): DeliveryRecord[];
  deadLetters(): DeadLetter[];
  /** Resolves when every published batch is delivered or dead-lettered. */
  drain(options?: { timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}
