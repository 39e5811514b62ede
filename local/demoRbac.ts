/**
 * `npm run demo:rbac` (with `npm start` or `npm run stack` running): the BYOK
 * access story end to end with the real SDK clients. As `contoso-admin` it creates
 * a key in the customer's vault, grants `keyturn-app` Key Vault Crypto Service
 * Encryption User on that key with AuthorizationManagementClient, shows the app's
 * identity can wrap and unwrap, removes the assignment and shows the 403.
 * Never prints key material.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { authorizationClient, roleDefinitionIdFor } from './arm/client';
import { DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION } from './keyvault';
import { credentialFor, resolveObjectId } from './keyvault/principals';
import { ROLES } from './keyvault/rbac';
import { readDemoCa } from './demoCa';

export interface RbacDemoOptions {
  byokUrl: string;
  armUrl: string;
  ca: string;
  keyName?: string;
  log?: (line: string) => void;
}

export interface RbacDemoResult {
  kid: string;
  assignmentName: string;
  unwrappedWhileGranted: boolean;
  statusAfterRemoval: number | undefined;
  codeAfterRemoval: string | undefined;
}

export async function runRbacDemo(options: RbacDemoOptions): Promise<RbacDemoResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const tls = { disableChallengeResourceVerification: true, tlsOptions: { ca: options.ca } };
  const keyName = options.keyName ?? `tenant-kek-${randomUUID().slice(0, 8)}`;
  const vaultScope = `/subscriptions/${DEFAULT_SUBSCRIPTION}/resourceGroups/${DEFAULT_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/contoso-byok`;

  // 1. The customer's admin creates the key in the customer's own vault.
  const admin = new KeyClient(options.byokUrl, credentialFor('contoso-admin'), tls);
  const key = await admin.createRsaKey(keyName, { keySize: 2048 });
  log(`1. contoso-admin created ${key.id}`);

  // 2. … and grants the app wrap/unwrap on that one key, over ARM.
  const arm = authorizationClient(options.armUrl, options.ca, 'contoso-admin');
  const scope = `${vaultScope}/keys/${keyName}`;
  const assignmentName = randomUUID();
  await arm.roleAssignments.create(scope, assignmentName, {
    roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoServiceEncryptionUser.id),
    principalId: resolveObjectId('keyturn-app') as string,
    principalType: 'ServicePrincipal',
  });
  log(`2. contoso-admin assigned '${ROLES.keyVaultCryptoServiceEncryptionUser.roleName}' to keyturn-app at ${scope}`);

  // 3. The app's identity wraps and unwraps a data key with it.
  const app = new CryptographyClient(key.id as string, credentialFor('keyturn-app'), tls);
  const dek = randomBytes(32);
  const wrapped = await app.wrapKey('RSA-OAEP', dek);
  const unwrapped = Buffer.from((await app.unwrapKey('RSA-OAEP', wrapped.result)).result);
  const unwrappedWhileGranted = unwrapped.equals(dek);
  log(`3. keyturn-app wrapped and unwrapped a data key: ${unwrappedWhileGranted ? 'ok' : 'MISMATCH'}`);

  // 4. Access removed: the next unwrap is refused.
  await arm.roleAssignments.delete(scope, assignmentName);
  log('4. contoso-admin removed the assignment');
  let statusAfterRemoval: number | undefined;
  let codeAfterRemoval: string | undefined;
  try {
    await app.unwrapKey('RSA-OAEP', wrapped.result);
    log('5. keyturn-app could still unwrap: access was NOT revoked');
  } catch (e) {
    statusAfterRemoval = (e as { statusCode?: number }).statusCode;
    codeAfterRemoval = (e as { code?: string }).code;
    log(`5. keyturn-app unwrap now answers ${statusAfterRemoval} ${codeAfterRemoval} (ForbiddenByRbac)`);
  }
  return { kid: key.id as string, assignmentName, unwrappedWhileGranted, statusAfterRemoval, codeAfterRemoval };
}

async function main(): Promise<void> {
  const ca = readDemoCa();
  const result = await runRbacDemo({
    byokUrl: process.env.KEYTURN_DEMO_BYOK_URL ?? `https://127.0.0.1:${process.env.KEYVAULT_BYOK_PORT || 8445}`,
    armUrl: process.env.KEYTURN_DEMO_ARM_URL ?? `https://127.0.0.1:${process.env.ARM_PORT || 8446}`,
    ca,
  });
  if (!result.unwrappedWhileGranted || result.statusAfterRemoval !== 403) process.exit(1);
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(`demo:rbac failed: ${e.message}`);
    process.exit(1);
  });
}
