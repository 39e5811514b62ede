/**
 * A local webhook subscriber for Event Grid tests: records every request,
 * answers the validation handshakes (EventGrid schema POST and CloudEvents
 * OPTIONS), and can be told to fail the next N notifications.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { eventually } from './process';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Parsed JSON body, if it was JSON. */
  json?: unknown;
  /** What the subscriber answered. */
  status: number;
  at: number;
}

export interface SubscriberOptions {
  /** Fixed port (e.g. from freePort(), for a subscriber that starts late); default 0. */
  port?: number;
  /** Fail the first N notifications with `failStatus`. */
  failFirst?: number;
  /** Status for failed notifications; default 500. */
  failStatus?: number;
  /** Status for successful notifications; default 200 (the functions host answers 202). */
  okStatus?: number;
  /** Answer handshakes correctly (default true). */
  validate?: boolean;
  /** Serve https with this certificate (e.g. from ensureLocalTls) instead of http. */
  https?: { cert: string; key: string };
}

export interface Subscriber {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Notification requests (aeg-event-type: Notification) in arrival order. */
  notifications(): RecordedRequest[];
  /** All events received in successful notifications, flattened. */
  receivedEvents<T = Record<string, unknown>>(): T[];
  /** Validation requests (SubscriptionValidation POSTs and OPTIONS). */
  handshakes(): RecordedRequest[];
  failNext(count: number, status?: number): void;
  setValidate(validate: boolean): void;
  close(): Promise<void>;
}

/** Polls a synchronous check until it is truthy (see `eventually`). */
export function waitFor<T>(check: () => T | undefined | false | null, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  return eventually(() => check() || undefined, what, timeoutMs, 20) as Promise<T>;
}

export async function startSubscriber(options: SubscriberOptions = {}): Promise<Subscriber> {
  const requests: RecordedRequest[] = [];
  let failRemaining = options.failFirst ?? 0;
  let failStatus = options.failStatus ?? 500;
  let validate = options.validate ?? true;
  const okStatus = options.okStatus ?? 200;

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json, status: 0, at: Date.now() };
      requests.push(record);
      const reply = (status: number, payload?: unknown, headers: Record<string, string> = {}): void => {
        record.status = status;
        const text = payload === undefined ? '' : JSON.stringify(payload);
        res.writeHead(status, { ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers });
        res.end(text);
      };
      if (req.method === 'OPTIONS') {
        const origin = String(req.headers['webhook-request-origin'] ?? '');
        return validate ? reply(200, undefined, { 'WebHook-Allowed-Origin': origin }) : reply(404);
      }
      const type = String(req.headers['aeg-event-type'] ?? '');
      if (type === 'SubscriptionValidation') {
        if (!validate) return reply(404);
        const first = Array.isArray(json) ? (json[0] as { data?: { validationCode?: string } } | undefined) : undefined;
        return reply(200, { validationResponse: first?.data?.validationCode });
      }
      if (failRemaining > 0) {
        failRemaining--;
        return reply(failStatus, { error: 'told to fail' });
      }
      return reply(okStatus);
    });
  };
  const server = options.https ? https.createServer(options.https, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const notifications = (): RecordedRequest[] => requests.filter((r) => r.headers['aeg-event-type'] === 'Notification');
  return {
    url: `${options.https ? 'https' : 'http'}://127.0.0.1:${port}/`,
    port,
    requests,
    notifications,
    receivedEvents<T>(): T[] {
      return notifications()
        .filter((r) => r.status >= 200 && r.status <= 204)
        .flatMap((r) => (Array.isArray(r.json) ? (r.json as T[]) : []));
    },
    handshakes: () => requests.filter((r) => r.method === 'OPTIONS' || r.headers['aeg-event-type'] === 'SubscriptionValidation'),
    failNext(count: number, status = 500): void {
      failRemaining = count;
      failStatus = status;
    },
    setValidate(value: boolean): void {
      validate = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
