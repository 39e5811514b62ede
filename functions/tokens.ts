import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { lazySchema } from '../shared/domain/lazySchema';
import { tokenRequestSchema } from '../shared/domain/tokenClaims';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { type SigningRoot, root, contextLogger } from '../shared/root';

/** POST /api/tokens: a JWT over the body's claims, signed by the current key in Key Vault. */
export function makeTokensHandler(signing: Pick<SigningRoot, 'tokens' | 'settings'>) {
  const schema = lazySchema(() => tokenRequestSchema(signing.settings.policy.tokenMaxLifetimeMs / 1000));
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const body = await readJsonBody(request, schema);
    const issued = await signing.tokens(contextLogger(context)).issue(body);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: issued };
  });
}

app.http('tokens', {
  route: 'tokens',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTokensHandler(root().signing),
});
