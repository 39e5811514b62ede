/**
 * The host's HTTP front door on 127.0.0.1: admin API, Event Grid webhook, then the
 * functions' routes under the route prefix. Function keys are ignored, as with `func start`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVENT_GRID_WEBHOOK_PATH, handleEventGridWebhook, type WebhookTarget } from './eventGridWebhook';
import type { FunctionCatalog, FunctionInfo, HostFunction } from './functionCatalog';
import { readBody, sendJson, sendText, toRpcHttpRequest, writeRpcHttpResponse } from './httpConversion';
import type { InvokeResult } from './invoker';
import { stringifyJson } from './jsonText';
import type { RpcTypedData } from './coreTypes';

export interface HostServerDeps {
  catalog: FunctionCatalog;
  routePrefix: string;
  baseUrl(): string;
  invokeHttp(fn: HostFunction, triggerData: RpcTypedData): Promise<InvokeResult>;
  eventGrid: WebhookTarget;
  /** Fire-and-forget run of a non-HTTP function. */
  runNonHttp(fn: HostFunction, input: string | null): void;
  status(): Record<string, unknown>;
  clockJump(timeMs: number): Promise<string[]>;
  logError(message: string): void;
}

function headerRecord(req: http.IncomingMessage): Record<string, string | undefined> {
  // Null prototype: a header named `constructor` or `__proto__` is just a header.
  const out: Record<string, string | undefined> = Object.create(null);
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

function parseJsonObject(body: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function isJsonContentType(req: http.IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

async function handleAdmin(
  deps: HostServerDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  lowerPath: string,
  path: string,
  body: Buffer,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (lowerPath === '/admin/functions' && method === 'GET') {
    const list: FunctionInfo[] = deps.catalog.info(deps.baseUrl());
    sendJson(res, 200, list);
    return;
  }
  if (lowerPath === '/admin/host/status' && method === 'GET') {
    sendJson(res, 200, deps.status());
    return;
  }
  if (lowerPath === '/admin/host/clock' && method === 'POST') {
    const json = parseJsonObject(body);
    const time = typeof json?.time === 'string' ? Date.parse(json.time) : NaN;
    if (Number.isNaN(time)) {
      sendText(res, 400, 'Expected a JSON body {"time": "<ISO 8601>"}.');
      return;
    }
    sendJson(res, 200, { ran: await deps.clockJump(time) });
    return;
  }
  const invoke = /^\/admin\/functions\/([^/]+)$/.exec(path);
  if (invoke && method === 'POST') {
    // ASP.NET's [FromBody] rejects non-JSON media types before the action runs.
    if (!isJsonContentType(req)) {
      sendText(res, 415);
      return;
    }
    const json = parseJsonObject(body);
    if (!json) {
      sendText(res, 400);
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(invoke[1] as string);
    } catch {
      sendText(res, 400, 'The function name in the URL is not valid percent-encoding.');
      return;
    }
    const fn = deps.catalog.find(name);
    if (!fn || fn.error) {
      sendText(res, 404);
      return;
    }
    if (fn.http) {
      sendText(res, 400, `'${fn.name}' is an HTTP function; call its URL (${deps.catalog.httpUrl(deps.baseUrl(), fn)}) instead.`);
      return;
    }
    const input = json.input === undefined || json.input === null ? null : typeof json.input === 'string' ? json.input : stringifyJson(json.input);
    deps.runNonHttp(fn, input);
    sendText(res, 202);
    return;
  }
  sendText(res, 404);
}

async function handleFunctionRoute(
  deps: HostServerDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  path: string,
  body: Buffer,
): Promise<void> {
  let relative: string | null = path;
  if (deps.routePrefix !== '') {
    const prefix = `/${deps.routePrefix.toLowerCase()}`;
    const lower = path.toLowerCase();
    relative = lower === prefix || lower === `${prefix}/` ? '' : lower.startsWith(`${prefix}/`) ? path.slice(prefix.length) : null;
  }
  const match = relative === null ? null : deps.catalog.routes.match(req.method ?? 'GET', relative);
  if (!match) {
    sendText(res, 404);
    return;
  }
  const result = await deps.invokeHttp(match.value, toRpcHttpRequest(req, url, body, match.params));
  if (!result.ok) {
    // func answers 500 with an empty body; details are in the host log only.
    sendText(res, 500);
    return;
  }
  try {
    writeRpcHttpResponse(res, result.response.returnValue);
  } catch (err) {
    deps.logError(`Could not write the response of '${match.value.name}': ${(err as Error).message}`);
    if (!res.headersSent) sendText(res, 500);
    else res.destroy();
  }
}

/**
 * The request URL from the Host header and request target, or null when they do not form
 * one (`[bad`, `a b`, empty, `:99999`): Kestrel answers those 400. A request without a
 * Host header (HTTP/1.0) is taken as 127.0.0.1.
 */
export function requestUrl(req: Pick<http.IncomingMessage, 'url' | 'headers'>): URL | null {
  const host = req.headers.host ?? '127.0.0.1';
  const target = req.url ?? '/';
  if (host === '' || /[\s/\\?#@]/.test(host)) return null;
  try {
    const base = new URL(`http://${host}`);
    if (base.host === '' || base.pathname !== '/') return null;
    // Origin-form targets ("/path", even "//x") are paths of this host, never another authority.
    if (target.startsWith('/')) return new URL(`${base.origin}${target}`);
    if (/^https?:\/\//i.test(target)) return new URL(target);
    return null;
  } catch {
    return null;
  }
}

export function createHostServer(deps: HostServerDeps): http.Server {
  return http.createServer((req, res) => {
    void (async () => {
      try {
        const url = requestUrl(req);
        if (!url) {
          req.resume();
          sendText(res, 400, 'Bad Request: invalid Host header or request target.');
          return;
        }
        const path = url.pathname;
        const lowerPath = path.toLowerCase().replace(/\/+$/, '') || '/';
        const body = await readBody(req);
        if (lowerPath === '/admin' || lowerPath.startsWith('/admin/')) {
          await handleAdmin(deps, req, res, lowerPath, path.replace(/\/+$/, ''), body);
        } else if (lowerPath === EVENT_GRID_WEBHOOK_PATH) {
          const answer = await handleEventGridWebhook(
            { method: req.method ?? 'GET', headers: headerRecord(req), functionName: url.searchParams.get('functionName'), body },
            deps.eventGrid,
          );
          if (answer.json !== undefined) sendJson(res, answer.status, answer.json);
          else sendText(res, answer.status, answer.text ?? '', answer.headers ?? {});
        } else {
          await handleFunctionRoute(deps, req, res, url, path, body);
        }
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode ?? 500;
        deps.logError(`Request ${req.method} ${req.url} failed: ${(err as Error).message}`);
        if (!res.headersSent) sendText(res, status);
        else res.destroy();
      }
    })();
  });
}

/** Binds 127.0.0.1 only; a port in use is a clear error naming the PORT setting. */
export function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(new Error(`Port ${port} is unavailable (already in use on 127.0.0.1). Close the process using it, or set PORT to another port (PORT=0 picks a free one).`));
      } else {
        reject(err);
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, '127.0.0.1');
  });
}
