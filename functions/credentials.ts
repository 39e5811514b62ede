import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { lazySchema } from '../shared/domain/lazySchema';
import { httpHandler, parseWith } from '../shared/http/problem';
import { type RenewalRoot, root, contextLogger } from '../shared/root';
import { MAX_TOKEN_CHARS } from '../shared/services/renewal/listingCursor';
import { LISTING_TOP } from '../shared/services/renewal/queries';

const querySchema = lazySchema(() =>
  z.object({
    top: z
      .string()
      .regex(/^\d{1,4}$/, `expected an integer from ${LISTING_TOP.min} to ${LISTING_TOP.max}`)
      .transform(Number)
      .pipe(z.number().int().min(LISTING_TOP.min).max(LISTING_TOP.max))
      .optional(),
    continuationToken: z.string().min(1).max(MAX_TOKEN_CHARS).optional(),
  }),
);

/**
 * GET /api/credentials[?top=&continuationToken=]: a page of managed credentials (current
 * version, expiry, stage and rotation); `continuationToken` in the answer fetches the next.
 */
export function makeCredentialsHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const q = request.query;
    const { top, continuationToken } = parseWith(
      querySchema,
      { top: q.get('top') ?? undefined, continuationToken: q.get('continuationToken') ?? undefined },
      'query',
    );
    const page = await renewal.service(contextLogger(context)).listCredentialsPage({ top: top ?? LISTING_TOP.default, ...(continuationToken ? { continuationToken } : {}) });
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: { credentials: page.credentials, ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}) },
    };
  });
}

app.http('credentials', {
  route: 'credentials',
  methods: ['GET'],
  authLevel: 'function',
  handler: makeCredentialsHandler(root().renewal),
});
