/**
 * The local Event Grid under malformed input: odd request targets, bad percent-encoding,
 * deep or cyclic events, chunked bodies. Each is a 4xx (or a clear error in-process), and
 * the grid keeps serving.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { startEventGrid, EnvelopeError, type LocalEventGrid } from '../../../local/eventgrid';
import { ensureLocalTls, type LocalTls } from '../../../local/tls';

let dir: string;
let tls: LocalTls;
let grid: LocalEventGrid;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eg-robust-'));
  tls = await ensureLocalTls(join(dir, 'tls'));
  grid = await startEventGrid({ port: 0, tls, log: (l) => logs.push(l), validationRetryMs: 25, retry: { delaysMs: [10] } });
});
afterAll(async () => {
  await grid?.close();
  await rm(dir, { recursive: true, force: true });
});

function rawStatus(request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: grid.port, host: '127.0.0.1', ca: tls.ca, servername: 'localhost' }, () => socket.write(request));
    let text = '';
    socket.on('data', (c) => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(request.split('\r\n')[0])}`));
    });
  });
}

function request(method: string, path: string, body?: string, headers: Record<string, string> = {}, chunked = false): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${grid.url}${path}`, { method, ca: tls.ca, headers: { 'content-type': 'application/json', ...headers, ...(chunked ? { 'transfer-encoding': 'chunked' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    if (body !== undefined && chunked) {
      req.write(body.slice(0, 5));
      req.write(body.slice(5));
    } else if (body !== undefined) req.write(body);
    req.end();
  });
}

const event = (data: string) => `[{"id":"1","subject":"s","eventType":"t","eventTime":"2030-01-01T00:00:00Z","data":${data}}]`;
const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

it('answers odd request targets with a 4xx instead of crashing', async () => {
  expect(await rawStatus('GET //[bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(404);
  expect(await rawStatus('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(400);
  expect(await rawStatus('GET http://other/management/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(400);
  expect((await request('GET', '/management/health')).status).toBe(200);
});

it('answers malformed percent-encoding with 400', async () => {
  expect((await request('GET', '/management/subscriptions/%E0%A4%A')).status).toBe(400);
  expect((await request('DELETE', '/management/subscriptions/%zz')).status).toBe(400);
  expect((await request('GET', '/eventsubscriptions/%E0%A4%A/validate?id=x')).status).toBe(400);
  const token = 'r=x&e=%E0%A4%A&s=%zz';
  expect((await request('POST', '/api/events', event('1'), { 'aeg-sas-token': token })).status).toBe(401);
});

it('refuses events nested too deep (text or in-process, cycles included) with a clear error', async () => {
  const key = { 'aeg-sas-key': grid.customTopic.key };
  const tooDeep = await request('POST', '/api/events', event(deep(100_000)), key);
  expect(tooDeep.status).toBe(400);
  expect(tooDeep.text).toContain('deeper than');
  expect((await request('POST', `/management/events?topic=${encodeURIComponent(grid.customTopic.topic)}`, event(deep(5_000)))).status).toBe(400);
  expect((await request('POST', '/management/subscriptions', deep(5_000))).status).toBe(400);
  // Deep but within the grid's limit is accepted (the subscriber decides what is too deep for it).
  expect((await request('POST', '/api/events', event(deep(100)), key)).status).toBe(200);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  expect(() => grid.publish(grid.customTopic.topic, [{ id: 'c', subject: 's', eventType: 't', eventTime: '2030-01-01T00:00:00Z', data: cyclic }])).toThrow(EnvelopeError);
});

it('reads chunked publish bodies', async () => {
  const res = await request('POST', '/api/events', event('{"a":1}'), { 'aeg-sas-key': grid.customTopic.key }, true);
  expect(res.status).toBe(200);
});
