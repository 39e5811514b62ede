import { app } from '@azure/functions';
import { httpHandler } from '../shared/http/problem';
import { type SigningRoot, root } from '../shared/root';

/** GET /api/.well-known/openid-configuration: where relying parties find the keys. Read-only; answers before the first keys exist. */
export function makeOpenidConfigurationHandler(signing: Pick<SigningRoot, 'publisher' | 'jwksMaxAgeSeconds' | 'jwksUri' | 'settings'>) {
  return httpHandler(async () => {
    const algs = await signing.publisher.algs();
    return {
      status: 200,
      headers: { 'cache-control': `public, max-age=${signing.jwksMaxAgeSeconds}` },
      jsonBody: {
        issuer: signing.settings.issuer,
        jwks_uri: signing.jwksUri,
        id_token_signing_alg_values_supported: algs,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
      },
    };
  });
}

app.http('openidConfiguration', {
  route: '.well-known/openid-configuration',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: makeOpenidConfigurationHandler(root().signing),
});
