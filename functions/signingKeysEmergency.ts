import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { kidSchema, requesterSchema } from '../shared/domain/signingKeys';
import { contextLogger } from '../shared/adapters/logger';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { type SigningRoot, root } from '../shared/root';
import { PRINCIPAL_NAME_HEADER } from '../shared/services/signing/signingKeys';

const bodySchema = z.strictObject({
  reason: z.string().trim().min(1).max(500),
  compromised: z.boolean(),
  requestedBy: requesterSchema.optional(),
  /** The signing key to roll away from (the `signingKid` seen before): makes a retry a no-op. */
  kid: kidSchema.optional(),
});

/**
 * POST /api/signing-keys/rollover: promote the published next key now; a compromised key
 * is unpublished and disabled at once (`disabledInKeyVault: false` when Key Vault failed:
 * the rollover happened and the timer retries the disable). With `kid`, a retry is a no-op.
 */
export function makeSigningKeysEmergencyHandler(signing: Pick<SigningRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const body = await readJsonBody(request, bodySchema);
    const result = await signing
      .service(contextLogger(context))
      .emergency({ ...body, principalName: request.headers.get(PRINCIPAL_NAME_HEADER) });
    const { record, ...rest } = result;
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { rollover: record ?? null, ...rest } };
  });
}

app.http('signingKeysEmergency', {
  route: 'signing-keys/rollover',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeSigningKeysEmergencyHandler(root().signing),
});
