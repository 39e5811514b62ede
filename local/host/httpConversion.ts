/**
 * Node request → RpcHttp input as the Functions host sends it to a worker with the
 * `RawHttpBodyBytes` / `UseNullableValueDictionaryForHttp` capabilities, and the
 * worker's RpcHttp response → Node response (cookies become Set-Cookie).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RpcHttpCookie, RpcHttpData, RpcNullableString, RpcTypedData } from './coreTypes';
import { readBody as readRequestBody, sendJson } from '../httpBody';

/** Maps keyed by request data have no prototype, so `__proto__` or `constructor` are plain keys. */
function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function nullable(values: Record<string, string>): Record<string, RpcNullableString> {
  const out = record<RpcNullableString>();
  for (const [k, v] of Object.entries(values)) out[k] = { value: v };
  return out;
}

/** Query keys are case-insensitive in ASP.NET and repeated values are joined with ",". */
export function collectQuery(search: string): Record<string, string> {
  const result = record<string>();
  const keyByLower = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(search)) {
    const existing = keyByLower.get(key.toLowerCase());
    if (existing === undefined) {
      keyByLower.set(key.toLowerCase(), key);
      result[key] = value;
    } else {
      result[existing] = `${result[existing]},${value}`;
    }
  }
  return result;
}

export function collectHeaders(req: IncomingMessage): Record<string, string> {
  const headers = record<string>();
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values) headers[name.toLowerCase()] = values.join(',');
  }
  return headers;
}

export function toRpcHttpRequest(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  params: Record<string, string>,
): RpcTypedData {
  const http: RpcHttpData = {
    method: (req.method ?? 'GET').toUpperCase(),
    url: url.href,
    nullableHeaders: nullable(collectHeaders(req)),
    nullableQuery: nullable(collectQuery(url.search)),
    nullableParams: nullable(params),
  };
  // Any body that arrived is forwarded: with Content-Length or chunked (streaming clients send no length).
  if (body.length > 0) http.body = { bytes: body };
  return { http };
}

function cookieHeader(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name ?? ''}=${cookie.value ?? ''}`];
  if (cookie.domain?.value) parts.push(`Domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`Path=${cookie.path.value}`);
  const seconds = cookie.expires?.value?.seconds;
  if (typeof seconds === 'number') parts.push(`Expires=${new Date(seconds * 1000).toUTCString()}`);
  if (typeof cookie.maxAge?.value === 'number') parts.push(`Max-Age=${Math.trunc(cookie.maxAge.value)}`);
  if (cookie.secure?.value) parts.push('Secure');
  if (cookie.httpOnly?.value) parts.push('HttpOnly');
  if (cookie.sameSite === 'lax') parts.push('SameSite=Lax');
  else if (cookie.sameSite === 'strict') parts.push('SameSite=Strict');
  else if (cookie.sameSite === 'explicitNone') parts.push('SameSite=None');
  return parts.join('; ');
}

function bodyBytes(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes);
  if (typeof data.string === 'string') return Buffer.from(data.string);
  if (typeof data.json === 'string') return Buffer.from(data.json);
  if (typeof data.int === 'number') return Buffer.from(String(data.int));
  if (typeof data.double === 'number') return Buffer.from(String(data.double));
  return Buffer.alloc(0);
}

/** Writes the function's return value; nothing returned is 200 with an empty body (OkResult). */
export function writeRpcHttpResponse(res: ServerResponse, returnValue: RpcTypedData | null | undefined): void {
  const http = returnValue?.http;
  if (!http) {
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    return;
  }
  const status = Number.parseInt(http.statusCode ?? '200', 10);
  const body = bodyBytes(http.body);
  for (const [name, value] of Object.entries(http.headers ?? {})) {
    if (name.toLowerCase() === 'content-length' || name.toLowerCase() === 'transfer-encoding') continue;
    res.setHeader(name, value);
  }
  const cookies = (http.cookies ?? []).map(cookieHeader);
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  res.setHeader('content-length', String(body.length));
  res.writeHead(Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500);
  res.end(body);
}

/** The body; over the limit (func's 100 MB) → an error with `statusCode` 413. */
export const readBody = (req: IncomingMessage, limitBytes = 100 * 1024 * 1024): Promise<Buffer> =>
  readRequestBody(req, limitBytes, () => Object.assign(new Error('Request body too large'), { statusCode: 413 }));

export function sendText(res: ServerResponse, status: number, text = '', headers: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, {
    ...(text ? { 'content-type': 'text/plain; charset=utf-8' } : {}),
    ...headers,
    'content-length': String(body.length),
  });
  res.end(body);
}

export { sendJson };
