/**
 * JWKS and OpenID discovery. The public keys live in the key set document, so serving
 * never calls Key Vault; each request does one point read of that document and reuses
 * the rendered body while its ETag is unchanged, so a removal is served at once by
 * every instance. Read-only: anonymous requests never create keys (the rollover timer
 * and `/api/tokens` do).
 */
import { createHash } from 'node:crypto';
import { type PublicJwk, type SigningAlg, publishedKeys } from '../../domain/signingKeys';
import type { StoredKeySet } from './ports';

export interface PublishedJwk extends PublicJwk {
  kid: string;
  use: 'sig';
  alg: SigningAlg;
}

export interface PublishedKeySet {
  /** The JSON body, rendered once per key set version. */
  body: string;
  /** Strong HTTP ETag over the body: the same on every instance. */
  etag: string;
  algs: SigningAlg[];
}

export class KeySetPublisher {
  private cached?: { stamp: string; published: PublishedKeySet };

  constructor(private readonly deps: { signingKeys: { read(): Promise<StoredKeySet | undefined> }; defaultAlg: SigningAlg }) {}

  /** The published keys, or undefined while there are none (before the first key set exists). */
  async current(): Promise<PublishedKeySet | undefined> {
    const stored = await this.deps.signingKeys.read();
    if (!stored) return undefined;
    if (this.cached?.stamp === stored.etag) return this.cached.published;
    const keys: PublishedJwk[] = publishedKeys(stored.set)
      .filter((k) => k.publicJwk)
      .map((k) => ({ ...k.publicJwk!, kid: k.kid, use: 'sig', alg: k.alg }));
    if (keys.length === 0) return undefined;
    const body = JSON.stringify({ keys });
    const published: PublishedKeySet = {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`,
      algs: [...new Set([this.deps.defaultAlg, ...keys.map((k) => k.alg)])],
    };
    this.cached = { stamp: stored.etag, published };
    return published;
  }

  /** Signing algorithms for discovery: those of the published keys, else the configured one. */
  async algs(): Promise<SigningAlg[]> {
    return (await this.current())?.algs ?? [this.deps.defaultAlg];
  }
}

/** `If-None-Match` names the current representation (a list, `*`, weak or strong tags). */
export function matchesEtag(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}
