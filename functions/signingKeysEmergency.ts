import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { lazySchema } from '../shared/domain/lazySchema';
import { kidSchema, requesterSchema } from '../shared/domain/signingKeys';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type SigningRoot, root, contextLogger } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';

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
export function makeSigningKeysEmergencyHandler(signing: Pick<SigningRoot, 'service' | 'trustEasyAuthHeader'>, incidents?: Pick<IncidentsRoot, 'service'>) {
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
    // A compromised key is a breach whichever door it came through: a key-leaked incident records the rollover.
    const fromKid = record?.fromKid ?? rest.kid;
    let incidentId: string | null = null;
    if (rest.compromised && incidents && fromKid) {
      incidentId = await incidents
        .service(log)
        .recordDoor(
          { type: 'key-leaked', severity: 'P1', description: `Emergency rollover of compromised signing key ${fromKid}: ${rest.reason}`, scope: { signingKeys: [fromKid] }, details: {} },
          `signing-emergency:${fromKid}`,
          { event: 'signing.emergency-rollover', evidence: { compromisedKid: fromKid, signingKid: summary.signingKid ?? null, disabledInKeyVault: summary.disabledInKeyVault ?? null, requestedBy: requester.requestedBy ?? null, door: 'POST /api/signing-keys/rollover' } },
        )
        .then((r) => r.incidentId)
        .catch((e: unknown) => {
          // The rollover happened; its incident is recorded by the next retry of this request.
          log.warn('Could not record the emergency rollover on an incident', { error: e instanceof Error ? e.message : String(e) });
          return null;
        });
    }
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { rollover: record ?? null, ...summary, incidentId } };
  });
}

app.http('signingKeysEmergency', {
  route: 'signing-keys/rollover',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeSigningKeysEmergencyHandler(root().signing, root().incidents),
});
