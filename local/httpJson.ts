/**
 * The one small JSON-over-HTTP(S) client of the local stack, its tools and tests.
 * HTTPS trusts only the CA given (per request), never by switching TLS checks off.
 */
import http from 'node:http';
import https from 'node:https';

export interface JsonRequest {
  method?: string;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** PEM of the CA to trust for https URLs. */
  ca?: string;
  timeoutMs?: number;
}

export interface JsonResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or the text when it is not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function requestJson(url: string, options: JsonRequest = {}): Promise<JsonResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new Error(`Invalid URL: ${url}`));
  }
  const isHttps = target.protocol === 'https:';
  if (!isHttps && target.protocol !== 'http:') return Promise.reject(new Error(`Unsupported URL scheme: ${url}`));
  const payload =
    options.body === undefined ? undefined : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = (isHttps ? https : http).request(target, {
      method: options.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        ...options.headers,
      },
      ...(isHttps && options.ca ? { ca: options.ca } : {}),
      timeout: timeoutMs,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
