/**
 * HTTP surface of the local Event Grid:
 * - `POST /api/events` — the custom topic endpoint EventGridPublisherClient talks to;
 * - `GET /eventsubscriptions/{name}/validate?id=` — the manual validationUrl;
 * - `/management/*` — local-only JSON API for subscriptions, deliveries, dead letters.
 * Errors use Azure's `{ error: { code, message, details } }` shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './auth';
import type { DeliveryEngine } from './delivery';
import { EnvelopeError, parseCloudEventBatch, parseEventGridBatch, type StoredEvent } from './envelope';
import { fromCloudEvent } from './cloudEvents';
import { SubscriptionInputError } from './subscriptions';
import { MAX_EVENT_JSON_DEPTH } from './envelope';
import { jsonTextExceedsDepth } from '../../shared/domain/jsonDepth';
import { readBody as readRequestBody, sendJson } from '../httpBody';

/** Azure's limit for one publish request. */
export const MAX_PUBLISH_BYTES = 1024 * 1024;

export interface ServerDeps {
  engine: DeliveryEngine;
  topicKey: string;
  customTopicId: string;
  /** Accepts already-validated events for a topic (shared with the in-process publish()). */
  accept: (topic: string, events: StoredEvent[]) => void;
  log: (line: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detailCode?: string,
  ) {
    super(message);
  }
}

function sendError(res: ServerResponse, err: HttpError): void {
  const error: Record<string, unknown> = { code: err.code, message: err.message };
  if (err.detailCode) error['details'] = [{ code: err.detailCode, message: err.message }];
  sendJson(res, err.status, { error });
}

/** The body as text; over `limit` → 413 RequestEntityTooLarge, as Event Grid answers. */
async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const raw = await readRequestBody(req, limit, (size) => new HttpError(413, 'RequestEntityTooLarge', `The request body is ${size} bytes or more; the limit is ${limit} bytes.`));
  return raw.toString('utf8');
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'BadRequest', 'The request body is empty.', 'InputJsonInvalid');
  // Stored events are cloned and serialised recursively later; refuse what would overflow the stack.
  if (jsonTextExceedsDepth(text, MAX_EVENT_JSON_DEPTH)) {
    throw new HttpError(400, 'BadRequest', `The request body nests deeper than ${MAX_EVENT_JSON_DEPTH} levels.`, 'InputJsonInvalid');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'BadRequest', `The request body is not valid JSON: ${(err as Error).message}`, 'InputJsonInvalid');
  }
}

/** A percent-decoded path segment; malformed encoding is the caller's mistake (400). */
function decodeSegment(raw: string | undefined): string {
  try {
    return decodeURIComponent(raw ?? '');
  } catch {
    throw new HttpError(400, 'BadRequest', 'The URL path is not valid percent-encoding.');
  }
}

/** Origin-form targets only ("/path", even "//x"); anything else is a 400, never a crash. */
function requestUrl(target: string | undefined): URL {
  const text = target ?? '/';
  try {
    if (text.startsWith('/')) return new URL(`https://localhost${text}`);
  } catch {
    // falls through to the 400
  }
  throw new HttpError(400, 'BadRequest', 'The request target is not a valid URL path.');
}

async function handleTopicPublish(req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  // api-version is accepted whatever it is (the SDK sends 2018-01-01).
  const auth = authenticate(req.headers, deps.topicKey);
  if (!auth.ok) throw new HttpError(401, 'Unauthorized', auth.message);
  const body = parseJson(await readBody(req, MAX_PUBLISH_BYTES));
  const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
  let events: StoredEvent[];
  try {
    if (contentType.includes('application/cloudevents')) {
      events = parseCloudEventBatch(body).map((cloudEvent) => ({ cloudEvent, event: fromCloudEvent(cloudEvent, deps.customTopicId) }));
    } else {
      events = parseEventGridBatch(body, deps.customTopicId).map((event) => ({ event }));
    }
  } catch (err) {
    if (err instanceof EnvelopeError) throw new HttpError(400, 'BadRequest', err.message, 'InputJsonInvalid');
    throw err;
  }
  deps.accept(deps.customTopicId, events);
  res.writeHead(200, { 'Content-Length': '0' });
  res.end();
}

async function handleManagement(req: IncomingMessage, res: ServerResponse, url: URL, deps: ServerDeps): Promise<void> {
  const path = url.pathname.replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  if (path === '/management/health' && method === 'GET') {
    sendJson(res, 200, { status: 'ok', customTopic: deps.customTopicId, subscriptions: deps.engine.subscriptions().length });
    return;
  }
  if (path === '/management/subscriptions') {
    if (method === 'GET') return sendJson(res, 200, deps.engine.subscriptions());
    if (method === 'POST') {
      const body = parseJson(await readBody(req, MAX_PUBLISH_BYTES));
      const name = typeof body === 'object' && body !== null ? (body as { name?: unknown }).name : undefined;
      const existed = typeof name === 'string' && deps.engine.subscriptions().some((s) => s.name === name);
      try {
        sendJson(res, existed ? 200 : 201, deps.engine.addSubscription(body));
      } catch (err) {
        if (err instanceof SubscriptionInputError) throw new HttpError(400, 'BadRequest', err.message, 'InvalidSubscription');
        throw err;
      }
      return;
    }
  }
  const named = /^\/management\/subscriptions\/([^/]+)$/.exec(path);
  if (named && method === 'DELETE') {
    const name = decodeSegment(named[1]);
    if (!deps.engine.removeSubscription(name)) throw new HttpError(404, 'NotFound', `Subscription '${name}' does not exist.`);
    res.writeHead(204);
    res.end();
    return;
  }
  if (named && method === 'GET') {
    const name = decodeSegment(named[1]);
    const sub = deps.engine.subscriptions().find((s) => s.name === name);
    if (!sub) throw new HttpError(404, 'NotFound', `Subscription '${name}' does not exist.`);
    return sendJson(res, 200, sub);
  }
  if (path === '/management/deliveries' && method === 'GET') {
    return sendJson(res, 200, deps.engine.deliveries(url.searchParams.get('subscription') ?? undefined));
  }
  if (path === '/management/deadletters' && method === 'GET') return sendJson(res, 200, deps.engine.deadLetters());
  if (path === '/management/events' && method === 'POST') {
    // System-topic publishing for emulators running in another process (no auth: local only).
    const topic = url.searchParams.get('topic');
    if (!topic) throw new HttpError(400, 'BadRequest', "query parameter 'topic' is required (full topic resource id)");
    const body = parseJson(await readBody(req, MAX_PUBLISH_BYTES));
    try {
      deps.accept(topic, parseEventGridBatch(body, topic).map((event) => ({ event })));
    } catch (err) {
      if (err instanceof EnvelopeError) throw new HttpError(400, 'BadRequest', err.message, 'InputJsonInvalid');
      throw err;
    }
    res.writeHead(200, { 'Content-Length': '0' });
    res.end();
    return;
  }
  throw new HttpError(404, 'NotFound', `The local Event Grid does not implement ${method} ${url.pathname}.`);
}

export function createRequestHandler(deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let url = new URL('https://localhost/');
    const route = async (): Promise<void> => {
      url = requestUrl(req.url);
      const path = url.pathname.replace(/\/+$/, '');
      if (path.toLowerCase() === '/api/events') {
        if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'Only POST is supported on /api/events.');
        return handleTopicPublish(req, res, deps);
      }
      const validate = /^\/eventsubscriptions\/([^/]+)\/validate$/i.exec(path);
      if (validate && req.method === 'GET') {
        const ok = deps.engine.manualValidate(decodeSegment(validate[1]), url.searchParams.get('id') ?? '');
        if (!ok) throw new HttpError(400, 'BadRequest', 'Unknown subscription or validation code.');
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('Webhook successfully validated as a part of the subscription validation.');
        return;
      }
      if (path.startsWith('/management')) return handleManagement(req, res, url, deps);
      throw new HttpError(404, 'NotFound', `The local Event Grid does not implement ${req.method} ${url.pathname}.`);
    };
    route().catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        // Unread bodies (a 400 before reading) are drained so the connection can be reused.
        req.resume();
        return sendError(res, err);
      }
      deps.log(`internal error on ${req.method} ${url.pathname}: ${(err as Error).message}`);
      sendError(res, new HttpError(500, 'InternalServerError', 'The local Event Grid failed to process the request.'));
    });
  };
}
