import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { publishedKeys, signingKey } from '../shared/domain/signingKeys';
import { contextLogger } from '../shared/adapters/logger';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { type SigningRoot, root } from '../shared/root';

const bodySchema = z.strictObject({
  reason: z.string().trim().min(1).max(500),
  compromised: z.boolean(),
  requestedBy: z.string().trim().min(1).max(200).optional(),
});

/** POST /api/signing-keys/rollover: promote the published next key now; a compromised key is unpublished at once. */
export function makeSigningKeysEmergencyHandler(signing: Pick<SigningRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const body = await readJsonBody(request, bodySchema);
    // The platform's authenticated principal wins over a self-declared name.
    const requestedBy = request.headers.get('x-ms-client-principal-name') ?? body.requestedBy ?? 'unknown';
    const service = signing.service(contextLogger(context));
    const outcome = await service.emergency({ reason: body.reason, compromised: body.compromised, requestedBy });
    const set = outcome?.stored.set ?? (await service.read())?.set;
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: {
        rollover: outcome?.record ?? null,
        ...(outcome ? {} : { detail: 'The key that signed when the request arrived had already stopped signing' }),
        signingKid: signingKey(set)?.kid,
        publishedKids: publishedKeys(set).map((k) => k.kid),
      },
    };
  });
}

app.http('signingKeysEmergency', {
  route: 'signing-keys/rollover',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeSigningKeysEmergencyHandler(root().signing),
});
