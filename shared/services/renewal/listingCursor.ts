/**
 * The continuation token of `GET /api/credentials`: where the next page starts (a vault,
 * Key Vault's continuation of its listing within it, and how many of that Key Vault page
 * were already taken). Opaque to callers; a token that was changed in any way is a 400.
 * The Key Vault continuation is checked again by the adapter (it is only ever followed
 * on the vault's own listing URL).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { lazySchema } from '../../domain/lazySchema';
import { ValidationError } from '../../errors';

export interface ListingCursor {
  /** Vault alias (settings order). */
  vault: string;
  /** Key Vault's continuation of that vault's listing; absent: its first page. */
  kv?: string;
  /** Items of that Key Vault page already taken. */
  skip: number;
}

export const MAX_TOKEN_CHARS = 4096;

const cursorSchema = lazySchema(() =>
  z
    .object({ v: z.string().min(1).max(200), k: z.string().min(1).max(3000).optional(), s: z.number().int().min(0).max(1000) })
    .strict(),
);

const check = (payload: string) => createHash('sha256').update(`keyturn-listing:${payload}`).digest('base64url').slice(0, 16);

export function encodeCursor(cursor: ListingCursor): string {
  const payload = Buffer.from(JSON.stringify({ v: cursor.vault, ...(cursor.kv ? { k: cursor.kv } : {}), s: cursor.skip }), 'utf8').toString('base64url');
  return `${payload}.${check(payload)}`;
}

export function decodeCursor(token: string): ListingCursor {
  const bad = () => new ValidationError('query.continuationToken', 'query.continuationToken: not a token this listing issued');
  const [payload, sum, ...rest] = token.split('.');
  if (!payload || !sum || rest.length > 0 || token.length > MAX_TOKEN_CHARS || check(payload) !== sum) throw bad();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) throw bad();
  return { vault: parsed.data.v, ...(parsed.data.k ? { kv: parsed.data.k } : {}), skip: parsed.data.s };
}
