/**
 * Delivery semantics of the local Event Grid against real local webhook
 * subscribers: handshakes, payload shapes, filters, retries, dead letters and
 * queueing for a subscriber that starts late.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLocalTls, type LocalTls } from '../../../local/tls';
import { startEventGrid, type EventGridOptions, type LocalEventGrid } from '../../../local/eventgrid';
import { freePort } from '../../../local/ports';
import { startSubscriber, waitFor, type Subscriber } from '../../helpers/subscriber';

const KV_TOPIC = '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let tlsDir: string;
let tls: LocalTls;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  tlsDir = await mkdtemp(join(tmpdir(), 'eg-tls-'));
  tls = await ensureLocalTls(tlsDir);
});
afterAll(async () => {
  await rm(tlsDir, { recursive: true, force: true });
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function grid(options: Partial<EventGridOptions> = {}): Promise<LocalEventGrid> {
  const g = await startEventGrid({
    port: 0,
    tls,
    log: () => {},
    validationRetryMs: 25,
    retry: { delaysMs: [10, 20], maxDeliveryAttempts: 5 },
    ...options,
  });
  cleanups.push(() => g.close());
  return g;
}

async function subscriber(...args: Parameters<typeof startSubscriber>): Promise<Subscriber> {
  const s = await startSubscriber(...args);
  cleanups.push(() => s.close());
  return s;
}

function kvEvent(n: number, overrides: Record<string, unknown> = {}) {
  return {
    id: `evt-${n}`,
    subject: `secret-${n}`,
    eventType: 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: '2025-03-01T10:00:00.000Z',
    data: { Id: `https://kv1.vault.azure.net/secrets/secret-${n}/v1`, VaultName: 'kv1', ObjectType: 'Secret', ObjectName: `secret-${n}`, Version: 'v1', NBF: null, EXP: 1740000000 },
    dataVersion: '1',
    ...overrides,
  };
}

describe('Event Grid schema subscription', () => {
  it('validates the endpoint with a SubscriptionValidationEvent, then delivers the event array', async () => {
    const g = await grid();
    const sub = await subscriber();
    g.addSubscription({ name: 'rotate', topic: KV_TOPIC, endpoint: `${sub.url}api/rotate` });
    await waitFor(() => g.subscriptions()[0]?.validation === 'validated', 5000, 'validation');

    const [hs] = sub.handshakes();
    expect(hs?.method).toBe('POST');
    expect(hs?.url).toBe('/api/rotate');
    expect(hs?.headers['aeg-event-type']).toBe('SubscriptionValidation');
    expect(hs?.headers['content-type']).toMatch(/^application\/json/);
    const validation = (hs?.json as Array<Record<string, unknown>>)[0];
    expect(hs?.json).toHaveLength(1);
    expect(Object.keys(validation ?? {}).sort()).toEqual(['data', 'dataVersion', 'eventTime', 'eventType', 'id', 'metadataVersion', 'subject', 'topic']);
    expect(validation).toMatchObject({
      id: expect.stringMatching(UUID),
      topic: KV_TOPIC,
      subject: '',
      eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
      metadataVersion: '1',
      dataVersion: '2',
      data: { validationCode: expect.stringMatching(UUID), validationUrl: expect.stringContaining(`${g.url}/eventsubscriptions/rotate/validate?id=`) },
    });

    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });
    const [n] = sub.notifications();
    expect(n?.method).toBe('POST');
    expect(n?.headers).toMatchObject({
      'content-type': 'application/json',
      'aeg-event-type': 'Notification',
      'aeg-subscription-name': 'ROTATE',
      'aeg-delivery-count': '0',
      'aeg-metadata-version': '1',
      'aeg-data-version': '1',
      'aeg-output-event-id': 'evt-1',
    });
    expect(n?.json).toEqual([{ ...kvEvent(1), topic: KV_TOPIC, metadataVersion: '1' }]);

    const [record] = g.deliveries();
    expect(record).toMatchObject({ subscription: 'rotate', state: 'delivered', attempts: 1, eventIds: ['evt-1'], endpoint: `${sub.url}api/rotate` });
    expect(record?.history.map((h) => h.statusCode)).toEqual([200]);
  });

  it('accepts 202 as success (the functions host answers 202)', async () => {
    const g = await grid();
    const sub = await subscriber({ okStatus: 202 });
    g.addSubscription({ name: 'host', topic: '*', endpoint: sub.url });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });
    expect(g.deliveries()[0]).toMatchObject({ state: 'delivered', attempts: 1 });
  });

  it('keeps retrying the handshake while the endpoint refuses it, and says why', async () => {
    const g = await grid();
    const sub = await subscriber({ validate: false });
    g.addSubscription({ name: 'never', topic: '*', endpoint: sub.url });
    await waitFor(() => sub.handshakes().length >= 2, 5000, 'handshake retries');
    expect(g.subscriptions()[0]).toMatchObject({ validation: 'validating', lastValidationError: expect.stringMatching(/HTTP 404/) });
  });
});

describe('CloudEvents schema subscription', () => {
  it('uses the OPTIONS abuse-protection handshake and delivers a CloudEvents batch', async () => {
    const g = await grid();
    const sub = await subscriber();
    g.addSubscription({ name: 'ce-sub', topic: KV_TOPIC, endpoint: sub.url, schema: 'CloudEventSchemaV1_0' });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });

    const [hs] = sub.handshakes();
    expect(hs?.method).toBe('OPTIONS');
    expect(hs?.headers['webhook-request-origin']).toBe('eventgrid.azure.net');

    const [n] = sub.notifications();
    expect(n?.headers['content-type']).toBe('application/cloudevents-batch+json; charset=utf-8');
    expect(n?.headers['aeg-event-type']).toBe('Notification');
    const e = kvEvent(1);
    expect(n?.json).toEqual([
      { id: 'evt-1', source: KV_TOPIC, subject: 'secret-1', type: e.eventType, time: e.eventTime, data: e.data, specversion: '1.0', datacontenttype: 'application/json' },
    ]);
  });
});

describe('filters and batching', () => {
  it('routes by topic, event types and subject prefix/suffix', async () => {
    const g = await grid();
    const near = await subscriber();
    const one = await subscriber();
    const other = await subscriber();
    g.addSubscription({ name: 'near-expiry', topic: KV_TOPIC, endpoint: near.url, includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry'] });
    g.addSubscription({ name: 'one-secret', topic: '*', endpoint: one.url, subjectBeginsWith: 'secret-2', subjectEndsWith: 'secret-2' });
    g.addSubscription({ name: 'other-vault', topic: KV_TOPIC.replace('kv1', 'kv2'), endpoint: other.url });

    g.publish(KV_TOPIC, [kvEvent(1), kvEvent(2), kvEvent(3, { eventType: 'Microsoft.KeyVault.SecretExpired' }), kvEvent(22)]);
    await g.drain({ timeoutMs: 5000 });

    const ids = (s: Subscriber) => s.receivedEvents<{ id: string }>().map((e) => e.id).sort();
    expect(ids(near)).toEqual(['evt-1', 'evt-2', 'evt-22']);
    expect(ids(one)).toEqual(['evt-2']);
    expect(ids(other)).toEqual([]);
    expect(g.deliveries('near-expiry')).toHaveLength(3);
  });

  it('batches up to maxEventsPerBatch', async () => {
    const g = await grid();
    const sub = await subscriber();
    g.addSubscription({ name: 'batched', topic: '*', endpoint: sub.url, maxEventsPerBatch: 2 });
    g.publish(KV_TOPIC, [kvEvent(1), kvEvent(2), kvEvent(3)]);
    await g.drain({ timeoutMs: 5000 });
    const sizes = sub.notifications().map((n) => (n.json as unknown[]).length).sort();
    expect(sizes).toEqual([1, 2]);
  });
});

describe('at-least-once delivery', () => {
  it('retries a failing subscriber with the backoff schedule until it answers 200', async () => {
    const g = await grid({ retry: { delaysMs: [10, 20], maxDeliveryAttempts: 10 } });
    const sub = await subscriber({ failFirst: 3 });
    g.addSubscription({ name: 'flaky', topic: KV_TOPIC, endpoint: sub.url });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });

    const notes = sub.notifications();
    expect(notes.map((n) => n.status)).toEqual([500, 500, 500, 200]);
    expect(notes.map((n) => n.headers['aeg-delivery-count'])).toEqual(['0', '1', '2', '3']);
    // Same event every time.
    expect(new Set(notes.map((n) => n.body)).size).toBe(1);
    const [record] = g.deliveries('flaky');
    expect(record).toMatchObject({ state: 'delivered', attempts: 4 });
    expect(record?.history.map((h) => h.statusCode)).toEqual([500, 500, 500, 200]);
    expect(g.deadLetters()).toEqual([]);
  });

  it('dead-letters after maxDeliveryAttempts and keeps the event inspectable', async () => {
    const g = await grid({ retry: { delaysMs: [5], maxDeliveryAttempts: 3 } });
    const sub = await subscriber({ failFirst: 1000, failStatus: 503 });
    g.addSubscription({ name: 'down', topic: KV_TOPIC, endpoint: sub.url });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });

    expect(sub.notifications()).toHaveLength(3);
    expect(g.deliveries('down')[0]).toMatchObject({ state: 'deadlettered', attempts: 3, deadLetterReason: 'MaxDeliveryAttemptsExceeded' });
    const [dl] = g.deadLetters();
    expect(dl).toMatchObject({
      subscription: 'down',
      topic: KV_TOPIC,
      deadLetterReason: 'MaxDeliveryAttemptsExceeded',
      deliveryAttempts: 3,
      lastHttpStatusCode: 503,
      lastDeliveryOutcome: 'Busy',
      event: { id: 'evt-1', topic: KV_TOPIC },
    });
  });

  it('treats an unreachable endpoint after validation as a failed attempt', async () => {
    const g = await grid({ retry: { delaysMs: [5], maxDeliveryAttempts: 2 } });
    const sub = await subscriber();
    g.addSubscription({ name: 'vanishing', topic: '*', endpoint: sub.url });
    await waitFor(() => g.subscriptions()[0]?.validation === 'validated', 5000, 'validation');
    await sub.close();
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await g.drain({ timeoutMs: 5000 });
    const [record] = g.deliveries();
    expect(record).toMatchObject({ state: 'deadlettered', attempts: 2 });
    expect(record?.history[0]?.statusCode).toBeUndefined();
    expect(record?.history[0]?.error).toMatch(/ECONNREFUSED/);
  });

  it('dead-letters events that outlive the TTL while the endpoint never validates', async () => {
    const g = await grid({ retry: { eventTtlMs: 150 } });
    const sub = await subscriber({ validate: false });
    g.addSubscription({ name: 'unvalidated', topic: '*', endpoint: sub.url });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    expect(g.deliveries()[0]?.state).toBe('validating');
    await g.drain({ timeoutMs: 5000 });
    expect(g.deliveries()[0]).toMatchObject({ state: 'deadlettered', deadLetterReason: 'TimeToLiveExceeded', attempts: 0 });
    expect(sub.notifications()).toHaveLength(0);
  });

  it('a subscriber that starts late gets every queued event after the handshake succeeds', async () => {
    const g = await grid();
    const port = await freePort();
    g.addSubscription({ name: 'late-host', topic: KV_TOPIC, endpoint: `http://127.0.0.1:${port}/runtime/webhooks/EventGrid?functionName=rotate` });
    g.publish(KV_TOPIC, [kvEvent(1), kvEvent(2)]);
    g.publish(KV_TOPIC, [kvEvent(3)]);
    await waitFor(() => g.subscriptions()[0]?.lastValidationError, 5000, 'a failed handshake');
    expect(g.deliveries().map((d) => d.state)).toEqual(['validating', 'validating', 'validating']);
    expect(g.deliveries().every((d) => d.attempts === 0)).toBe(true);

    const sub = await subscriber({ port, okStatus: 202 });
    await g.drain({ timeoutMs: 5000 });
    expect(sub.handshakes().length).toBeGreaterThanOrEqual(1);
    expect(sub.requests[0]?.headers['aeg-event-type']).toBe('SubscriptionValidation');
    expect(sub.requests[0]?.url).toBe('/runtime/webhooks/EventGrid?functionName=rotate');
    expect(sub.receivedEvents<{ id: string }>().map((e) => e.id).sort()).toEqual(['evt-1', 'evt-2', 'evt-3']);
    expect(g.deliveries().map((d) => d.state)).toEqual(['delivered', 'delivered', 'delivered']);
  });

  it('one slow subscriber does not hold up another', async () => {
    const g = await grid({ deliveryTimeoutMs: 60_000 });
    const http = await import('node:http');
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.headers['aeg-event-type'] === 'SubscriptionValidation') {
          const code = (JSON.parse(Buffer.concat(chunks).toString()) as Array<{ data: { validationCode: string } }>)[0]?.data.validationCode;
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ validationResponse: code }));
          return;
        }
        void held.then(() => res.writeHead(200).end());
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      release();
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    });
    const fast = await subscriber();
    g.addSubscription({ name: 'slow', topic: '*', endpoint: `http://127.0.0.1:${(slow.address() as { port: number }).port}/` });
    g.addSubscription({ name: 'fast', topic: '*', endpoint: fast.url });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    await waitFor(() => g.deliveries('fast')[0]?.state === 'delivered', 5000, 'fast delivery');
    expect(g.deliveries('slow')[0]?.state).toBe('pending');
    release();
    await g.drain({ timeoutMs: 5000 });
    expect(g.deliveries('slow')[0]?.state).toBe('delivered');
  });

  it('dead-letters undelivered batches of a deleted subscription', async () => {
    const g = await grid();
    const port = await freePort();
    g.addSubscription({ name: 'gone', topic: '*', endpoint: `http://127.0.0.1:${port}/` });
    g.publish(KV_TOPIC, [kvEvent(1)]);
    g.removeSubscription('gone');
    await g.drain({ timeoutMs: 1000 });
    expect(g.deadLetters()).toMatchObject([{ subscription: 'gone', deadLetterReason: 'SubscriptionDeleted', deliveryAttempts: 0 }]);
    expect(g.subscriptions()).toEqual([]);
  });
});

describe('programmatic publish', () => {
  it('names the bad field of an invalid event', async () => {
    const g = await grid();
    expect(() => g.publish(KV_TOPIC, [kvEvent(1), { ...kvEvent(2), eventType: '' }])).toThrow(/\[1\]\.eventType/);
  });

  it('accepts Date eventTime and stamps the topic', async () => {
    const g = await grid();
    const sub = await subscriber();
    g.addSubscription({ name: 'dates', topic: '*', endpoint: sub.url });
    g.publish(KV_TOPIC, [{ ...kvEvent(1), eventTime: new Date('2025-01-01T00:00:00Z'), topic: '/ignored' }]);
    await g.drain({ timeoutMs: 5000 });
    expect(sub.receivedEvents()[0]).toMatchObject({ eventTime: '2025-01-01T00:00:00.000Z', topic: KV_TOPIC });
  });
});
