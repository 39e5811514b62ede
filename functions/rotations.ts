import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { lazySchema } from '../shared/domain/lazySchema';
import { ROTATION_ID } from '../shared/domain/rotation';
import { httpHandler, parseWith } from '../shared/http/problem';
import { type RenewalRoot, root, contextLogger } from '../shared/root';

/** Rotation ids are lower case (names and versions are case-insensitive): any casing is accepted. */
const paramsSchema = lazySchema(() =>
  z.object({
    id: z
      .string()
      .transform((id) => id.toLowerCase())
      .pipe(z.string().regex(ROTATION_ID, 'expected {vault}:{name}:{version}:{attempt}')),
  }),
);

/** GET /api/rotations/{id}: one rotation's steps, timestamps, attempts and last error. */
export function makeRotationsHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { id } = parseWith(paramsSchema, { id: request.params.id }, 'route');
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: await renewal.service(contextLogger(context)).getRotation(id),
    };
  });
}

app.http('rotations', {
  route: 'rotations/{id}',
  methods: ['GET'],
  authLevel: 'function',
  handler: makeRotationsHandler(root().renewal),
});
