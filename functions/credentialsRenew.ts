import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type RenewalRoot, root, contextLogger } from '../shared/root';

const paramsSchema = z.object({
  vault: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a vault key from KEYTURN_VAULTS'),
  name: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault secret name'),
});
/** No body is needed; one that is sent must be an empty JSON object. */
const bodySchema = z.strictObject({});

/** POST /api/credentials/{vault}/{name}/renew: 202 with the rotation; 409 while one is in flight. */
export function makeCredentialsRenewHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const params = parseWith(paramsSchema, { vault: request.params.vault, name: request.params.name }, 'route');
    await readJsonBody(request, bodySchema);
    const rotation = await renewal.service(contextLogger(context)).renew(params.vault, params.name);
    return {
      status: 202,
      headers: { 'cache-control': 'no-store', location: `/api/rotations/${rotation.id}` },
      jsonBody: { rotationId: rotation.id, rotation },
    };
  });
}

app.http('credentialsRenew', {
  route: 'credentials/{vault}/{name}/renew',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeCredentialsRenewHandler(root().renewal),
});
