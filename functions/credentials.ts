import { type InvocationContext, app } from '@azure/functions';
import { httpHandler } from '../shared/http/problem';
import { type RenewalRoot, root, contextLogger } from '../shared/root';

/** GET /api/credentials: every managed credential, its current version, expiry, stage and rotation. */
export function makeCredentialsHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return httpHandler(async (_request: unknown, context: InvocationContext) => ({
    status: 200,
    headers: { 'cache-control': 'no-store' },
    jsonBody: { credentials: await renewal.service(contextLogger(context)).listCredentials() },
  }));
}

app.http('credentials', {
  route: 'credentials',
  methods: ['GET'],
  authLevel: 'function',
  handler: makeCredentialsHandler(root().renewal),
});
