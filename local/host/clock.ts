/**
 * The scheduler's notion of "now". Locally it can follow the Key Vault emulator's movable
 * clock (`KEYTURN_CLOCK_URL`): the offset is fetched at start, and the emulator tells the
 * host about every move through a registered listener URL.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export interface HostClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: HostClock = { now: () => Date.now() };

/** A base clock plus an offset that jumps set; idempotent if the base already moved there. */
export class AdjustableClock implements HostClock {
  #offsetMs = 0;
  constructor(private readonly base: HostClock) {}

  now(): number {
    return this.base.now() + this.#offsetMs;
  }

  set(timeMs: number): void {
    this.#offsetMs = timeMs - this.base.now();
  }

  setOffset(offsetMs: number): void {
    this.#offsetMs = offsetMs;
  }
}

export interface JsonRequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  /** PEM file of the CA to trust for https URLs (never disables verification). */
  caFile?: string;
  timeoutMs?: number;
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

export function requestJson(url: string, options: JsonRequestOptions = {}): Promise<JsonResponse> {
  const target = new URL(url);
  const isHttps = target.protocol === 'https:';
  if (!isHttps && target.protocol !== 'http:') return Promise.reject(new Error(`Unsupported clock URL scheme: ${url}`));
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const agent = isHttps && options.caFile ? new https.Agent({ ca: readFileSync(options.caFile) }) : undefined;
  return new Promise((resolve, reject) => {
    const req = (isHttps ? https : http).request(
      target,
      {
        method: options.method ?? 'GET',
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
        ...(agent ? { agent } : {}),
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`Timed out calling ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Reads the emulator clock and returns its offset from this machine's clock in ms. */
export async function fetchClockOffset(clockUrl: string, caFile: string | undefined): Promise<number> {
  const started = Date.now();
  const res = await requestJson(clockUrl, { ...(caFile ? { caFile } : {}) });
  if (res.status !== 200 || typeof res.body !== 'object' || res.body === null) {
    throw new Error(`GET ${clockUrl} answered ${res.status}`);
  }
  const body = res.body as { time?: unknown; offsetSeconds?: unknown };
  if (typeof body.offsetSeconds === 'number' && Number.isFinite(body.offsetSeconds)) return body.offsetSeconds * 1000;
  const time = typeof body.time === 'string' ? Date.parse(body.time) : NaN;
  if (Number.isNaN(time)) throw new Error(`GET ${clockUrl} returned neither "offsetSeconds" nor a valid "time"`);
  // Without an offset, assume the answer was produced half-way through the call.
  return time - (started + Date.now()) / 2;
}

export async function registerClockListener(clockUrl: string, listenerUrl: string, caFile: string | undefined): Promise<void> {
  const url = `${clockUrl.replace(/\/+$/, '')}/listeners`;
  const res = await requestJson(url, { method: 'POST', body: { url: listenerUrl }, ...(caFile ? { caFile } : {}) });
  if (res.status < 200 || res.status >= 300) throw new Error(`POST ${url} answered ${res.status}`);
}

export async function retry<T>(attempts: number, firstDelayMs: number, action: () => Promise<T>): Promise<T> {
  let delay = firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}
