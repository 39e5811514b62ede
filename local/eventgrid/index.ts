/**
 * Local Event Grid: a custom topic that speaks the EventGridPublisherClient
 * wire, system topics fed in-process (e.g. by the Key Vault emulator),
 * Azure-like subscriptions with filters, validation handshakes, at-least-once
 * delivery with retries, and inspectable dead letters.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_EVENT_TTL_MS,
  DEFAULT_MAX_DELIVERY_ATTEMPTS,
  DEFAULT_RETRY_DELAYS_MS,
  DeliveryEngine,
} from './delivery';
import { EnvelopeError, parseEventGridEvent, type StoredEvent } from './envelope';
import { OutboundClient } from './httpClient';
import { createRequestHandler } from './server';
import type { EventGridEventInput, EventGridOptions, LocalEventGrid, Subscription, SubscriptionInput } from './types';

export * from './types';
export { subscriptionsFromEnv, parseSubscriptionInput, matchesFilter, SubscriptionInputError } from './subscriptions';
export { toCloudEvent, fromCloudEvent } from './cloudEvents';
export { EnvelopeError } from './envelope';
export { DEFAULT_RETRY_DELAYS_MS, DEFAULT_MAX_DELIVERY_ATTEMPTS, DEFAULT_EVENT_TTL_MS } from './delivery';

export const DEFAULT_EVENTGRID_PORT = 8444;
export const DEFAULT_TOPIC_KEY = 'local-eventgrid-key';
export const DEFAULT_CUSTOM_TOPIC_NAME = 'keyturn-notifications';
export const DEFAULT_SUBSCRIPTION_ID = '00000000-0000-0000-0000-000000000000';
export const DEFAULT_RESOURCE_GROUP = 'keyturn-local';

/** Resource id of a custom topic, as Event Grid stamps it on events. */
export function customTopicId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.EventGrid/topics/${name}`;
}

export async function startEventGrid(options: EventGridOptions): Promise<LocalEventGrid> {
  const log = options.log ?? ((line: string) => console.log(`[eventgrid] ${line}`));
  const host = options.host ?? '127.0.0.1';
  const topicKey = options.topicKey ?? DEFAULT_TOPIC_KEY;
  const topicId = customTopicId(
    options.subscriptionId ?? DEFAULT_SUBSCRIPTION_ID,
    options.resourceGroup ?? DEFAULT_RESOURCE_GROUP,
    options.customTopicName ?? DEFAULT_CUSTOM_TOPIC_NAME,
  );
  const delaysMs = options.retry?.delaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  if (delaysMs.some((d) => !Number.isFinite(d) || d < 0)) throw new Error('retry.delaysMs must be non-negative numbers');

  // The grid trusts the local CA for https subscribers (local host with TLS), plus any extra CA.
  const client = new OutboundClient([options.tls.ca, ...(options.caForEndpoints ? [options.caForEndpoints] : [])]);
  let baseUrl = '';
  const engine = new DeliveryEngine({
    client,
    delaysMs,
    maxDeliveryAttempts: options.retry?.maxDeliveryAttempts ?? DEFAULT_MAX_DELIVERY_ATTEMPTS,
    eventTtlMs: options.retry?.eventTtlMs ?? DEFAULT_EVENT_TTL_MS,
    validationRetryMs: options.validationRetryMs ?? 2000,
    deliveryTimeoutMs: options.deliveryTimeoutMs ?? 30_000,
    concurrencyPerSubscription: options.concurrencyPerSubscription ?? 4,
    customTopicId: topicId,
    validationUrl: (name, code) => `${baseUrl}/eventsubscriptions/${encodeURIComponent(name)}/validate?id=${code}`,
    log,
  });

  const accept = (topic: string, events: StoredEvent[]): void => {
    engine.publish(topic, events);
  };
  const server = https.createServer(
    { cert: options.tls.cert, key: options.tls.key },
    createRequestHandler({ engine, topicKey, customTopicId: topicId, accept, log }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_EVENTGRID_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `https://${host}:${port}`;
  log(`listening on ${baseUrl}; custom topic ${topicId} at ${baseUrl}/api/events`);

  // Subscriptions start their handshakes only once validationUrl can be built.
  try {
    for (const sub of options.subscriptions ?? []) engine.addSubscription(sub);
  } catch (err) {
    engine.close();
    client.destroy();
    server.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port,
    customTopic: { endpoint: `${baseUrl}/api/events`, key: topicKey, topic: topicId },
    publish(topic: string, events: EventGridEventInput[]): void {
      let stored: StoredEvent[];
      try {
        stored = events.map((e, i) => ({ event: parseEventGridEvent({ ...e, topic: undefined }, topic, `[${i}]`) }));
      } catch (err) {
        if (err instanceof EnvelopeError) throw new EnvelopeError(`publish to ${topic}: ${err.message}`, err.field);
        throw err;
      }
      engine.publish(topic, stored);
    },
    addSubscription: (sub: SubscriptionInput): Subscription => engine.addSubscription(sub),
    removeSubscription(name: string): void {
      if (!engine.removeSubscription(name)) throw new Error(`subscription '${name}' does not exist`);
    },
    subscriptions: () => engine.subscriptions(),
    deliveries: (subscription?: string) => engine.deliveries(subscription),
    deadLetters: () => engine.deadLetters(),
    drain: (opts?: { timeoutMs?: number }) => engine.drain(opts?.timeoutMs),
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        engine.close();
        client.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
