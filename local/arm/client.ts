/**
 * The real ARM client for the local endpoint: `AuthorizationManagementClient` with
 * a principal's token, trusting the local CA for this client only.
 */
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { DEFAULT_SUBSCRIPTION } from '../keyvault';
import { credentialFor } from '../keyvault/principals';

export function authorizationClient(armUrl: string, ca: string, principal: string, subscriptionId = DEFAULT_SUBSCRIPTION): AuthorizationManagementClient {
  // Tokens are requested for `{endpoint}/.default`, as against management.azure.com.
  return new AuthorizationManagementClient(credentialFor(principal), subscriptionId, { endpoint: armUrl, tlsOptions: { ca } });
}

/** The role-definition id ARM expects in an assignment (subscription-scoped form). */
export function roleDefinitionIdFor(roleGuid: string, subscriptionId = DEFAULT_SUBSCRIPTION): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid}`;
}
