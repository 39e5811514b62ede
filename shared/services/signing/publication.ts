/**
 * JWKS and OpenID discovery. The public keys live in the key set document, so serving
 * never calls Key Vault. The rendered body is served from memory for at most `cacheMs`
 * (KEYTURN_JWKS_CACHE_MS, default 1 s; about two point reads of the document per host
 * per `cacheMs` however many requests arrive, made ahead of time so no request waits on
 * them, and the render is reused while its ETag is unchanged). A key set write on this host (an emergency rollover above all) calls
 * `invalidate()`, so this host serves the new set from the very next request; other
 * hosts serve it within `cacheMs`, well under the JWKS max-age relying parties cache for.
 * Read-only: anonymous requests never create keys (the rollover timer and `/api/tokens` do).
 */
import { createHash } from 'node:crypto';
import { type PublicJwk, type SigningAlg, publishedKeys } from '../../domain/signingKeys';
import type { KeySetStore, StoredKeySet } from './ports';

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

export interface PublisherDeps {
  signingKeys: { read(): Promise<StoredKeySet | undefined> };
  defaultAlg: SigningAlg;
  /** How long a read key set may be served from memory; 0 (the default here) reads on every request. */
  cacheMs?: number;
  /** Milliseconds on a monotonic clock (tests move it). */
  now?: () => number;
}

export class KeySetPublisher {
  private cached?: { stamp: string; published: PublishedKeySet };
  /** The last read's answer and when it was read: served while younger than `cacheMs`. */
  private fresh?: { at: number; published: PublishedKeySet | undefined };
  /** One read in flight at a time: a burst of requests shares it. */
  private reading?: Promise<PublishedKeySet | undefined>;
  /** Bumped by `invalidate()`: a read that started before it neither fills the cache nor is shared after it. */
  private generation = 0;
  private readonly cacheMs: number;
  private readonly now: () => number;

  constructor(private readonly deps: PublisherDeps) {
    this.cacheMs = Math.max(0, deps.cacheMs ?? 0);
    this.now = deps.now ?? (() => performance.now());
  }

  /** Drops the cached key set: the next request reads the document (after any key set write on this host). */
  invalidate(): void {
    this.generation++;
    this.fresh = undefined;
    this.reading = undefined;
  }

  /** The published keys, or undefined while there are none (before the first key set exists). */
  async current(): Promise<PublishedKeySet | undefined> {
    if (this.cacheMs === 0) return this.read();
    const fresh = this.fresh;
    const age = fresh ? this.now() - fresh.at : Infinity;
    if (fresh && age < this.cacheMs) {
      // Past half its time, read ahead in the background: requests never wait on the refresh,
      // and nothing older than `cacheMs` is ever served.
      if (age >= this.cacheMs / 2 && !this.reading) this.refresh().catch(() => undefined);
      return fresh.published;
    }
    return this.reading ?? this.refresh();
  }

  /** One read at a time; its answer is kept only if no invalidation came in between. */
  private refresh(): Promise<PublishedKeySet | undefined> {
    const generation = this.generation;
    const at = this.now();
    const reading = this.read().then(
      (published) => {
        if (this.generation === generation) {
          this.fresh = { at, published };
          this.reading = undefined;
        }
        return published;
      },
      (e: unknown) => {
        if (this.generation === generation) this.reading = undefined;
        throw e;
      },
    );
    this.reading = reading;
    return reading;
  }

  private async read(): Promise<PublishedKeySet | undefined> {
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

/**
 * The key set store with every write dropping the publisher's cache on this host, also
 * when the write failed (it may have landed): an emergency rollover is served at once.
 */
export function invalidatesOnWrite(store: KeySetStore, publisher: Pick<KeySetPublisher, 'invalidate'>): KeySetStore {
  return {
    read: (issuer) => store.read(issuer),
    write: (set, etag) => store.write(set, etag).finally(() => publisher.invalidate()),
    saveRollover: (record) => store.saveRollover(record),
    rollovers: (issuer, limit) => store.rollovers(issuer, limit),
  };
}

/** `If-None-Match` names the current representation (a list, `*`, weak or strong tags). */
export function matchesEtag(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}
