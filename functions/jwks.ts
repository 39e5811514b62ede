import { type HttpRequest, app } from '@azure/functions';
import { httpHandler, problem } from '../shared/http/problem';
import { type SigningRoot, root } from '../shared/root';
import { matchesEtag } from '../shared/services/signing/publication';

/** Seconds a relying party should wait while the first keys are being created (the timer runs at start-up). */
const NOT_READY_RETRY_AFTER_S = 10;

/**
 * GET /api/.well-known/jwks.json: next, current and previous public keys, cacheable for ≤ 5 minutes.
 * Read-only. Before the first keys exist: 503 + Retry-After (not cached, so no relying party
 * or CDN keeps an empty set; clients keep their last good set and retry).
 */
export function makeJwksHandler(signing: Pick<SigningRoot, 'publisher' | 'jwksMaxAgeSeconds'>) {
  return httpHandler(async (request: HttpRequest) => {
    const published = await signing.publisher.current();
    if (!published) {
      return problem('SIGNING_KEYS_NOT_READY', 'No signing keys are published yet; they are being created. Retry shortly.', {}, NOT_READY_RETRY_AFTER_S);
    }
    const { body, etag } = published;
    const headers = { 'cache-control': `public, max-age=${signing.jwksMaxAgeSeconds}`, etag };
    if (matchesEtag(request.headers.get('if-none-match'), etag)) return { status: 304, headers };
    return { status: 200, headers: { ...headers, 'content-type': 'application/json' }, body };
  });
}

app.http('jwks', {
  route: '.well-known/jwks.json',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: makeJwksHandler(root().signing),
});
