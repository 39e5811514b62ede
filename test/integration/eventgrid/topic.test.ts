/**
 * The custom topic endpoint through the real @azure/eventgrid publisher client,
 * the management API, and trust for https subscribers.
 */
import { AzureKeyCredential, EventGridPublisherClient, generateSharedAccessSignature, AzureSASCredential } from '@azure/eventgrid';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { ensureLocalTls, type LocalTls } from '../../../local/tls';
import { startEventGrid, type EventGridOptions, type LocalEventGrid } from '../../../local/eventgrid';
import { startSubscriber, waitFor, type Subscriber } from '../../helpers/subscriber';

/** A CA with its own name (CAs sharing a subject name would shadow each other in a trust list). */
async function otherCa(): Promise<LocalTls> {
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'Some other CA' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { ca: ca.cert, cert: server.cert, key: server.private, caFile: '' };
}

let dir: string;
let tls: LocalTls;
/** A second, unrelated CA, as an https subscriber with its own certificate would have. */
let otherTls: LocalTls;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eg-topic-'));
  [tls, otherTls] = await Promise.all([ensureLocalTls(join(dir, 'a')), otherCa()]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function grid(options: Partial<EventGridOptions> = {}): Promise<LocalEventGrid> {
  const g = await startEventGrid({ port: 0, tls, log: () => {}, validationRetryMs: 25, retry: { delaysMs: [10] }, ...options });
  cleanups.push(() => g.close());
  return g;
}

async function subscriber(...args: Parameters<typeof startSubscriber>): Promise<Subscriber> {
  const s = await startSubscriber(...args);
  cleanups.push(() => s.close());
  return s;
}

interface RawResponse {
  status: number;
  headers: Record<string, unknown>;
  json: unknown;
}

/** Raw HTTPS call trusting only the local CA (per request, never process-wide). */
function call(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = https.request(url, { method, ca: tls.ca, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        let json: unknown = raw || undefined;
        try {
          json = raw ? (JSON.parse(raw) as unknown) : undefined;
        } catch {
          // Not JSON (e.g. the validationUrl's text answer): keep the text.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

describe('custom topic via EventGridPublisherClient', () => {
  it('delivers events sent with AzureKeyCredential, stamping the custom topic id', async () => {
    const g = await grid({ customTopicName: 'keyturn-notifications', subscriptionId: 'sub-1', resourceGroup: 'rg-1' });
    expect(g.customTopic.topic).toBe('/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.EventGrid/topics/keyturn-notifications');
    expect(g.customTopic.key).toBe('local-eventgrid-key');
    const sub = await subscriber();
    g.addSubscription({ name: 'notify', topic: g.customTopic.topic, endpoint: sub.url, includedEventTypes: ['Keyturn.RotationCompleted'] });

    const client = new EventGridPublisherClient(g.customTopic.endpoint, 'EventGrid', new AzureKeyCredential(g.customTopic.key), {
      tlsOptions: { ca: tls.ca },
      retryOptions: { maxRetries: 0 },
    });
    await client.send([
      { eventType: 'Keyturn.RotationCompleted', subject: 'secrets/db-password', dataVersion: '1.0', data: { itemId: 'db-password', version: 'v2' } },
      { eventType: 'Keyturn.Ignored', subject: 'x', dataVersion: '1.0', data: {} },
    ]);
    await g.drain({ timeoutMs: 5000 });

    const events = sub.receivedEvents<Record<string, unknown>>();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      topic: g.customTopic.topic,
      subject: 'secrets/db-password',
      eventType: 'Keyturn.RotationCompleted',
      data: { itemId: 'db-password', version: 'v2' },
      dataVersion: '1.0',
      metadataVersion: '1',
      id: expect.any(String),
      eventTime: expect.any(String),
    });
  });

  it('accepts a CloudEvents batch and passes it through to CloudEvents subscribers', async () => {
    const g = await grid();
    const ce = await subscriber();
    const eg = await subscriber();
    g.addSubscription({ name: 'ce-sub', topic: '*', endpoint: ce.url, schema: 'CloudEventSchemaV1_0' });
    g.addSubscription({ name: 'eg-sub', topic: '*', endpoint: eg.url });
    const client = new EventGridPublisherClient(g.customTopic.endpoint, 'CloudEvent', new AzureKeyCredential(g.customTopic.key), {
      tlsOptions: { ca: tls.ca },
      retryOptions: { maxRetries: 0 },
    });
    await client.send([{ type: 'Keyturn.Breach', source: '/keyturn/incidents', subject: 'inc-1', data: { severity: 'high' }, extensionAttributes: { keyturnrun: 'r1' } }]);
    await g.drain({ timeoutMs: 5000 });

    expect(ce.receivedEvents()[0]).toMatchObject({ type: 'Keyturn.Breach', source: '/keyturn/incidents', subject: 'inc-1', specversion: '1.0', keyturnrun: 'r1', data: { severity: 'high' } });
    expect(eg.receivedEvents()[0]).toMatchObject({ eventType: 'Keyturn.Breach', topic: g.customTopic.topic, subject: 'inc-1', data: { severity: 'high' } });
  });

  it('accepts a SAS token made by generateSharedAccessSignature', async () => {
    const g = await grid({ topicKey: Buffer.from('a-proper-base64-key').toString('base64') });
    const sub = await subscriber();
    g.addSubscription({ name: 'sas', topic: '*', endpoint: sub.url });
    const token = await generateSharedAccessSignature(g.customTopic.endpoint, new AzureKeyCredential(g.customTopic.key), new Date(Date.now() + 600_000));
    const client = new EventGridPublisherClient(g.customTopic.endpoint, 'EventGrid', new AzureSASCredential(token), { tlsOptions: { ca: tls.ca }, retryOptions: { maxRetries: 0 } });
    await client.send([{ eventType: 'T', subject: 's', dataVersion: '1', data: {} }]);
    await g.drain({ timeoutMs: 5000 });
    expect(sub.receivedEvents()).toHaveLength(1);
  });

  it('rejects a wrong key with 401 and an Event Grid error body', async () => {
    const g = await grid();
    const client = new EventGridPublisherClient(g.customTopic.endpoint, 'EventGrid', new AzureKeyCredential('wrong'), {
      tlsOptions: { ca: tls.ca },
      retryOptions: { maxRetries: 0 },
    });
    await expect(client.send([{ eventType: 'T', subject: 's', dataVersion: '1', data: {} }])).rejects.toMatchObject({ statusCode: 401 });

    const raw = await call(`${g.customTopic.endpoint}?api-version=2018-01-01`, 'POST', [], { 'aeg-sas-key': 'wrong' });
    expect(raw.status).toBe(401);
    expect(raw.json).toEqual({ error: { code: 'Unauthorized', message: expect.stringMatching(/not authorized/) } });
    expect((await call(g.customTopic.endpoint, 'POST', [])).status).toBe(401);
  });

  it('rejects a bad body with 400 naming the field', async () => {
    const g = await grid();
    const key = { 'aeg-sas-key': g.customTopic.key };
    const url = `${g.customTopic.endpoint}?api-version=2018-01-01`;
    const missing = await call(url, 'POST', [{ id: '1', subject: 's', eventTime: new Date().toISOString(), data: {} }], key);
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error: { code: 'BadRequest', message: expect.stringContaining('[0].eventType'), details: [{ code: 'InputJsonInvalid' }] } });

    const notJson = await call(url, 'POST', '{oops', key);
    expect(notJson.status).toBe(400);
    expect(notJson.json).toMatchObject({ error: { message: expect.stringMatching(/not valid JSON/) } });

    const notArray = await call(url, 'POST', { id: '1' }, key);
    expect(notArray.json).toMatchObject({ error: { message: expect.stringMatching(/JSON array/) } });

    const badCe = await call(url, 'POST', [{ id: '1', source: '/s', type: 't', specversion: '0.3' }], { ...key, 'Content-Type': 'application/cloudevents-batch+json; charset=utf-8' });
    expect(badCe.status).toBe(400);
    expect(badCe.json).toMatchObject({ error: { message: expect.stringContaining('[0].specversion') } });

    const tooBig = await call(url, 'POST', 'x'.repeat(1024 * 1024 + 1), key);
    expect(tooBig.status).toBe(413);

    expect((await call(url, 'POST', [], key)).status).toBe(200);
  });
});

describe('management API', () => {
  it('adds, lists, replaces and deletes subscriptions; reports deliveries and dead letters', async () => {
    const g = await grid({ retry: { delaysMs: [5], maxDeliveryAttempts: 2 } });
    const ok = await subscriber();
    const bad = await subscriber({ failFirst: 100 });
    const m = `${g.url}/management`;

    expect(await call(`${m}/health`, 'GET')).toMatchObject({ status: 200, json: { status: 'ok', customTopic: g.customTopic.topic } });
    const created = await call(`${m}/subscriptions`, 'POST', { name: 'ok-sub', topic: '*', endpoint: ok.url });
    expect(created).toMatchObject({ status: 201, json: { name: 'ok-sub', schema: 'EventGridSchema', maxEventsPerBatch: 1 } });
    expect((await call(`${m}/subscriptions`, 'POST', { name: 'ok-sub', topic: '*', endpoint: ok.url, subjectBeginsWith: 'a' })).status).toBe(200);
    expect((await call(`${m}/subscriptions`, 'POST', { name: 'bad-sub', topic: '*', endpoint: bad.url })).status).toBe(201);

    const invalid = await call(`${m}/subscriptions`, 'POST', { name: 'x-sub', topic: '*', endpoint: 'ftp://nope' });
    expect(invalid.status).toBe(400);
    expect(invalid.json).toMatchObject({ error: { code: 'BadRequest', message: expect.stringContaining("'endpoint'") } });

    const list = await call(`${m}/subscriptions`, 'GET');
    expect((list.json as Array<{ name: string; subjectBeginsWith?: string }>).map((s) => [s.name, s.subjectBeginsWith])).toEqual([
      ['ok-sub', 'a'],
      ['bad-sub', undefined],
    ]);

    const published = await call(`${g.customTopic.endpoint}?api-version=2018-01-01`, 'POST', [{ id: 'e1', subject: 'abc', eventType: 'T', eventTime: new Date().toISOString(), data: {}, dataVersion: '1' }], {
      'aeg-sas-key': g.customTopic.key,
    });
    expect(published.status).toBe(200);
    await g.drain({ timeoutMs: 5000 });

    const deliveries = await call(`${m}/deliveries?subscription=bad-sub`, 'GET');
    expect(deliveries.json).toMatchObject([{ subscription: 'bad-sub', state: 'deadlettered', attempts: 2, history: [{ statusCode: 500 }, { statusCode: 500 }] }]);
    expect(((await call(`${m}/deliveries`, 'GET')).json as unknown[]).length).toBe(2);
    expect((await call(`${m}/deadletters`, 'GET')).json).toMatchObject([{ subscription: 'bad-sub', deadLetterReason: 'MaxDeliveryAttemptsExceeded', event: { id: 'e1' } }]);

    expect((await call(`${m}/subscriptions/bad-sub`, 'DELETE')).status).toBe(204);
    expect((await call(`${m}/subscriptions/bad-sub`, 'DELETE')).status).toBe(404);
    expect(g.subscriptions().map((s) => s.name)).toEqual(['ok-sub']);
    expect((await call(`${m}/nope`, 'GET')).json).toMatchObject({ error: { code: 'NotFound', message: expect.stringMatching(/does not implement GET \/management\/nope/) } });
  });

  it('publishes into a system topic over HTTP (for emulators in another process)', async () => {
    const g = await grid();
    const sub = await subscriber();
    const kv = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv9';
    g.addSubscription({ name: 'kv-sub', topic: kv, endpoint: sub.url });
    const res = await call(`${g.url}/management/events?topic=${encodeURIComponent(kv)}`, 'POST', [
      { id: 'k1', subject: 'secret', eventType: 'Microsoft.KeyVault.SecretNewVersionCreated', eventTime: new Date().toISOString(), data: {}, dataVersion: '1' },
    ]);
    expect(res.status).toBe(200);
    await g.drain({ timeoutMs: 5000 });
    expect(sub.receivedEvents()[0]).toMatchObject({ id: 'k1', topic: kv });
  });

  it('validates through the manual validationUrl when the endpoint does not answer the handshake', async () => {
    const g = await grid();
    const sub = await subscriber({ validate: false });
    g.addSubscription({ name: 'manual', topic: '*', endpoint: sub.url });
    const url = await waitFor(() => {
      const first = sub.handshakes()[0]?.json as Array<{ data: { validationUrl: string } }> | undefined;
      return first?.[0]?.data.validationUrl;
    }, 5000, 'handshake');
    expect((await call(url.replace(/id=[^&]+/, 'id=wrong'), 'GET')).status).toBe(400);
    expect(g.subscriptions()[0]?.validation).toBe('validating');
    // The code stays the same across handshake retries, as in Azure.
    expect((await call(url, 'GET')).status).toBe(200);
    await waitFor(() => g.subscriptions()[0]?.validation === 'validated', 5000, 'manual validation');
  });
});

describe('https subscribers', () => {
  it('trusts the local CA and caForEndpoints per agent, and nothing else', async () => {
    const local = await subscriber({ https: { cert: tls.cert, key: tls.key } });
    const foreign = await subscriber({ https: { cert: otherTls.cert, key: otherTls.key } });

    const strict = await grid();
    strict.addSubscription({ name: 'local-ca', topic: '*', endpoint: local.url });
    strict.addSubscription({ name: 'other-ca', topic: '*', endpoint: foreign.url });
    await waitFor(() => strict.subscriptions().find((s) => s.name === 'local-ca')?.validation === 'validated', 5000, 'local CA endpoint');
    await waitFor(() => strict.subscriptions().find((s) => s.name === 'other-ca')?.lastValidationError, 5000, 'TLS failure');
    expect(strict.subscriptions().find((s) => s.name === 'other-ca')).toMatchObject({ validation: 'validating', lastValidationError: expect.stringMatching(/certificate/i) });

    const trusting = await grid({ caForEndpoints: otherTls.ca });
    trusting.addSubscription({ name: 'other-ca', topic: '*', endpoint: foreign.url });
    trusting.publish('/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/topics/t', [{ id: '1', subject: 's', eventType: 'T', eventTime: new Date().toISOString() }]);
    await trusting.drain({ timeoutMs: 5000 });
    expect(foreign.receivedEvents()).toHaveLength(1);
  });
});
