/**
 * Publisher authentication for the custom topic: the `aeg-sas-key` header (what
 * AzureKeyCredential sends) or an `aeg-sas-token` made by the SDK's
 * generateSharedAccessSignature (HMAC-SHA256 with the base64-decoded key).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type AuthResult = { ok: true } | { ok: false; message: string };

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses the .NET "M/d/yyyy h:mm:ss tt" UTC form the SDK writes into `e=`. */
export function parseServiceTime(text: string): number | undefined {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/.exec(text);
  if (!m) return undefined;
  const [, mo, d, y, h, mi, s, ampm] = m;
  let hour = Number(h) % 12;
  if (ampm === 'PM') hour += 12;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), hour, Number(mi), Number(s));
}

function decodeOrNull(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

export function verifySasToken(token: string, key: string, now = Date.now()): AuthResult {
  const parts = new Map<string, string>();
  for (const pair of token.split('&')) {
    const i = pair.indexOf('=');
    if (i > 0) parts.set(pair.slice(0, i), pair.slice(i + 1));
  }
  const r = parts.get('r');
  const e = parts.get('e');
  const s = parts.get('s');
  if (r === undefined || e === undefined || s === undefined) return { ok: false, message: 'The aeg-sas-token is malformed (needs r, e and s).' };
  const signature = decodeOrNull(s);
  const expiry = decodeOrNull(e);
  if (signature === null || expiry === null) return { ok: false, message: 'The aeg-sas-token is malformed (bad percent-encoding).' };
  const expected = createHmac('sha256', Buffer.from(key, 'base64')).update(`r=${r}&e=${e}`).digest('base64');
  if (!safeEqual(signature, expected)) return { ok: false, message: 'The aeg-sas-token signature is not valid for this topic.' };
  const expires = parseServiceTime(expiry);
  if (expires === undefined || expires < now) return { ok: false, message: 'The aeg-sas-token has expired.' };
  return { ok: true };
}

export function authenticate(headers: Record<string, string | string[] | undefined>, key: string): AuthResult {
  const sasKey = headers['aeg-sas-key'];
  if (typeof sasKey === 'string') {
    return safeEqual(sasKey, key) ? { ok: true } : { ok: false, message: 'The request authorization key is not authorized for this topic.' };
  }
  const sasToken = headers['aeg-sas-token'];
  if (typeof sasToken === 'string') return verifySasToken(sasToken, key);
  if (typeof headers['authorization'] === 'string') {
    return { ok: false, message: 'Microsoft Entra (Authorization: Bearer) publishing is not implemented by the local Event Grid; use aeg-sas-key.' };
  }
  return { ok: false, message: 'The request did not contain an aeg-sas-key or aeg-sas-token header.' };
}
