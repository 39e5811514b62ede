import { app } from '@azure/functions';
import { httpHandler } from '../shared/http/problem';
import { type TenantsRoot, root } from '../shared/root';

/** GET /api/policy/keys: the key policy every key creation consults. */
export function makePolicyKeysHandler(tenants: Pick<TenantsRoot, 'policies'>) {
  return httpHandler(async () => {
    const { version, rsaMinBits, forbiddenAlgorithms } = await tenants.policies.current();
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { version, rsaMinBits, forbiddenAlgorithms } };
  });
}

app.http('policyKeys', {
  route: 'policy/keys',
  methods: ['GET'],
  authLevel: 'function',
  handler: makePolicyKeysHandler(root().tenants),
});
