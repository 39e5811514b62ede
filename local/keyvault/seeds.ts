/**
 * The role assignments a fresh local stack starts with, mirroring `infra/`: on
 * Keyturn's vault the app's Secrets Officer + Crypto Officer, and Role Based Access
 * Control Administrator limited (ABAC condition) to the Key Vault data roles, so
 * Keyturn can remove a principal's access to its own vaults; Administrator + Owner
 * for the operator. On the customer's vault, Administrator + Owner for its admin.
 */
import { resolveObjectId } from './principals';
import { KEY_VAULT_DATA_ROLE_IDS, ROLES, onlyRolesCondition, type Authorization } from './rbac';

export const CUSTOMER_VAULT = 'contoso-byok';

function oid(name: string): string {
  return resolveObjectId(name) as string;
}

export function seedAssignments(authorization: Authorization, vault: { vaultName: string; scope: string }): void {
  const { scope } = vault;
  if (vault.vaultName === CUSTOMER_VAULT) {
    authorization.grant(oid('contoso-admin'), ROLES.keyVaultAdministrator, scope);
    authorization.grant(oid('contoso-admin'), ROLES.owner, scope);
    return;
  }
  // Any other vault is one Keyturn manages (keyturn-local).
  authorization.grant(oid('keyturn-app'), ROLES.keyVaultSecretsOfficer, scope);
  authorization.grant(oid('keyturn-app'), ROLES.keyVaultCryptoOfficer, scope);
  // Deleted objects' metadata (`deletedSecrets/read`, outside `secrets/*`): verify finds soft-deleted incident checkpoints.
  authorization.grant(oid('keyturn-app'), ROLES.keyVaultReader, scope);
  authorization.grant(oid('keyturn-app'), ROLES.roleBasedAccessControlAdministrator, scope, {
    condition: onlyRolesCondition(KEY_VAULT_DATA_ROLE_IDS),
    conditionVersion: '2.0',
    description: 'Keyturn may grant and remove Key Vault data roles on its own vault',
  });
  authorization.grant(oid('operator'), ROLES.keyVaultAdministrator, scope);
  authorization.grant(oid('operator'), ROLES.owner, scope);
}
