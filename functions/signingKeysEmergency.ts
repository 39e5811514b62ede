import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { lazySchema } from '../shared/domain/lazySchema';
import { kidSchema, requesterSchema } from '../shared/domain/signingKeys';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type SigningRoot, root, contextLogger } from '../shared/root';

const bodySchema = lazySchema(() =>
  z.strictObject({
    reason: z.string().trim().min(1).max(500),
    compromised: z.boolean(),
    requestedBy: requesterSchema.optional(),
    /** The signing key to roll away from (the `signingKid` seen before): makes a retry a no-op. */
    kid: kidSchema.optional(),
  }),
);

/**
 * POST /api/signing-keys/rollover: promote the published next key now; a compromised key
 * is unpublished and disabled at once (`disabledInKeyVault: false` when Key Vault failed:
 * the rollover happened and the timer retries the disable). With `kid`, a retry is a no-op.
 */
export function makeSigningKeysEmergencyHandler(signing: Pick<SigningRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const body = await readJsonBody(request, bodySchema);
    const log = contextLogger(context);
    const { requestedBy, ...rest } = body;
    const requester = resolveRequester(
      { requestedBy, principalName: request.headers.get(PRINCIPAL_NAME_HEADER) },
      { trustEasyAuthHeader: signing.trustEasyAuthHeader, log },
    );
    const result = await signing.service(log).emergency({ ...rest, ...requester });
    const { record, ...summary } = result;
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { rollover: record ?? null, ...summary } };
  });
}

app.http('signingKeysEmergency', {
  route: 'signing-keys/rollover',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeSigningKeysEmergencyHandler(root().signing),
});
