import { type HttpRequest, app } from '@azure/functions';
import { httpHandler } from '../shared/http/problem';
import { type SigningRoot, root } from '../shared/root';
import { matchesEtag } from '../shared/services/signing/publication';

/** GET /api/.well-known/jwks.json: next, current and previous public keys, cacheable for ≤ 5 minutes. */
export function makeJwksHandler(signing: Pick<SigningRoot, 'publisher' | 'jwksMaxAgeSeconds'>) {
  return httpHandler(async (request: HttpRequest) => {
    const { body, etag } = await signing.publisher.current();
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
