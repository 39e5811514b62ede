import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { lazySchema } from '../shared/domain/lazySchema';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type RenewalRoot, root, contextLogger } from '../shared/root';

const paramsSchema = lazySchema(() =>
  z.object({
    vault: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a vault key from KEYTURN_VAULTS'),
    name: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault secret name'),
  }),
);
/** No body is needed (an empty one renews the current version); `fromVersion` renews only that version. */
const bodySchema = lazySchema(() =>
  z.strictObject({
    fromVersion: z.string().regex(/^[0-9a-zA-Z]{1,64}$/, 'expected a Key Vault secret version').optional(),
  }),
);
/** Printable ASCII, as in the IETF Idempotency-Key draft's examples (a UUID fits). */
const headersSchema = lazySchema(() =>
  z.object({
    'idempotency-key': z.string().regex(/^[\x21-\x7e]{1,255}$/, 'expected 1 to 255 printable ASCII characters').optional(),
  }),
);

/**
 * POST /api/credentials/{vault}/{name}/renew: 202 with a rotation it started, 200 with
 * the rotation already replacing `fromVersion`; 409 while one is in flight.
 */
export function makeCredentialsRenewHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const params = parseWith(paramsSchema, { vault: request.params.vault, name: request.params.name }, 'route');
    const headers = parseWith(headersSchema, { 'idempotency-key': request.headers.get('idempotency-key') ?? undefined }, 'header');
    const body = await readJsonBody(request, bodySchema);
    const answer = await renewal.service(contextLogger(context)).renewRequest(params.vault, params.name, {
      ...(body.fromVersion !== undefined ? { fromVersion: body.fromVersion } : {}),
      ...(headers['idempotency-key'] !== undefined ? { idempotencyKey: headers['idempotency-key'] } : {}),
    });
    return {
      status: answer.status,
      headers: {
        'cache-control': 'no-store',
        location: `/api/rotations/${String(answer.body.rotationId)}`,
        ...(answer.replayed ? { 'idempotent-replayed': 'true' } : {}),
      },
      jsonBody: answer.body,
    };
  });
}

app.http('credentialsRenew', {
  route: 'credentials/{vault}/{name}/renew',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeCredentialsRenewHandler(root().renewal),
});
