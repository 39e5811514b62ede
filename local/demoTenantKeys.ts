/**
 * `npm run demo:tenant-keys` (with `npm start` running): both tenant-key topologies end
 * to end, step by step. A service-managed tenant: content protected offline with jose,
 * a rekey, old content still opens, the changeover ends (the emulator's clock moved, the
 * resume timer archives the previous version). A BYOK tenant in the customer's vault
 * `contoso-byok`: `contoso-admin` creates and tags the key and grants Keyturn, content
 * is protected offline, the tenant is revoked, `contoso-admin` removes the assignment,
 * the revoke completes and the content is unreadable. Never prints key material.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyClient } from '@azure/keyvault-keys';
import { CompactEncrypt, importJWK } from 'jose';
import { authorizationClient, roleDefinitionIdFor } from './arm/client';
import { requestJson } from './httpJson';
import { DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION } from './keyvault';
import { credentialFor, resolveObjectId } from './keyvault/principals';
import { ROLES } from './keyvault/rbac';

const APP_URL = process.env.KEYTURN_DEMO_APP_URL ?? 'http://127.0.0.1:7071';
const VAULT_URL = process.env.KEYTURN_DEMO_VAULT_URL ?? `https://127.0.0.1:${process.env.KEYVAULT_PORT || 8443}`;
const BYOK_URL = process.env.KEYTURN_DEMO_BYOK_URL ?? `https://127.0.0.1:${process.env.KEYVAULT_BYOK_PORT || 8445}`;
const ARM_URL = process.env.KEYTURN_DEMO_ARM_URL ?? `https://127.0.0.1:${process.env.ARM_PORT || 8446}`;
const CA_FILE = process.env.KEYTURN_DEMO_CA_FILE ?? join(process.cwd(), '.keyturn', 'keyvault', 'ca.pem');
const HOUR_S = 3600;

type Json = Record<string, any>;

async function main(): Promise<void> {
  let ca: string;
  try {
    ca = readFileSync(CA_FILE, 'utf8');
  } catch {
    throw new Error(`No CA at ${CA_FILE}: start the local stack first with \`npm start\`.`);
  }
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> => {
    const res = await requestJson(`${APP_URL}/api/${path}`, { method, ...(body !== undefined ? { body } : {}), timeoutMs: 120_000 });
    return { status: res.status, json: res.text ? (JSON.parse(res.text) as Json) : {} };
  };
  if ((await api('GET', 'health').catch(() => ({ status: 0, json: {} }))).status === 0) {
    throw new Error(`The app does not answer at ${APP_URL}: run \`npm start\` in another terminal.`);
  }
  let n = 0;
  const step = (line: string) => console.log(`${String(++n).padStart(2)}. ${line}`);
  const short = (kid: string | null | undefined) => (kid ? `…/keys/${kid.split('/keys/')[1]!.slice(0, 40)}…` : '-');
  const must = (res: { status: number; json: Json }, status: number, what: string) => {
    if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.json)}`);
    return res.json;
  };
  const protectOffline = async (tenantId: string, text: string) => {
    const { keys } = must(await api('GET', `tenants/${tenantId}/keys`), 200, 'GET /keys');
    const jwk = keys[0];
    const jwe = await new CompactEncrypt(new TextEncoder().encode(text)).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk.kid }).encrypt(await importJWK(jwk, 'RSA-OAEP-256'));
    return { jwe, kid: jwk.kid as string };
  };
  const open = async (tenantId: string, jwe: string) => {
    const res = await api('POST', `tenants/${tenantId}/unprotect`, { jwe });
    return res.status === 200 ? `opens: "${Buffer.from(res.json.plaintext, 'base64').toString()}" (kid ${short(res.json.kid)})` : `refused: ${res.status} ${res.json.code}`;
  };
  const moveClock = async (seconds: number) => {
    const res = await requestJson(`${VAULT_URL}/management/vault/time/all?seconds=${seconds}`, { method: 'PUT', ca, timeoutMs: 120_000 });
    if (res.status !== 200) throw new Error(`Moving the emulator clock failed: ${res.status}`);
  };
  const suffix = randomUUID().slice(0, 6);

  console.log('== Service-managed: Keyturn generates the key and imports it into its own vault ==');
  const sm = `demo-sm-${suffix}`;
  const created = must(await api('POST', 'tenants', { tenantId: sm, topology: 'service-managed', adminContacts: ['keys@demo.example'] }), 201, 'POST /tenants').tenant;
  step(`created tenant ${sm}: state ${created.state}, key in use ${short(created.activeKid)}`);
  const before = await protectOffline(sm, 'written before the rekey');
  step(`a client protected content offline with jose and the published key (kid ${short(before.kid)})`);
  const rekeyed = must(await api('POST', `tenants/${sm}/rekey`, { reason: 'demo', fromKid: created.activeKid }), 200, 'rekey').tenant;
  step(`rekeyed: state ${rekeyed.state}, new key in use ${short(rekeyed.activeKid)}, previous accepted until ${rekeyed.changeoverUntil}`);
  step(`/keys now publishes ${must(await api('GET', `tenants/${sm}/keys`), 200, 'keys').keys.length} keys (new first); old content ${await open(sm, before.jwe)}`);
  const after = must(await api('POST', `tenants/${sm}/protect`, { plaintext: Buffer.from('written after the rekey').toString('base64') }), 200, 'protect');
  step(`protect now uses the new version: ${short(after.kid)}`);
  step('moving the emulator clock 25 hours: the changeover window ends; the resume timer archives the previous version');
  await moveClock(25 * HOUR_S);
  // The resume timer runs every minute; the demo asks the local host to run it now (its admin endpoint).
  const resume = () => requestJson(`${APP_URL}/admin/functions/resumeRotations`, { method: 'POST', body: { input: '' }, timeoutMs: 30_000 });
  let t: Json = rekeyed;
  for (let i = 0; i < 60 && t.state !== 'active'; i++) {
    if (i % 10 === 0) await resume();
    await new Promise((r) => setTimeout(r, 1000));
    t = must(await api('GET', `tenants/${sm}`), 200, 'GET tenant').tenant;
  }
  step(`changeover over: state ${t.state}; versions ${t.versions.map((v: Json) => v.state).join(', ')}; /keys publishes ${must(await api('GET', `tenants/${sm}/keys`), 200, 'keys').keys.length} key`);
  step(`old content after the archive ${await open(sm, before.jwe)}`);

  console.log("\n== BYOK: the key lives in the customer's vault contoso-byok; Keyturn never changes it ==");
  const byok = `demo-byok-${suffix}`;
  const tls = { disableChallengeResourceVerification: true, tlsOptions: { ca } };
  const admin = new KeyClient(BYOK_URL, credentialFor('contoso-admin'), tls);
  const keyName = `demo-tk-${suffix}`;
  const key = await admin.createRsaKey(keyName, { keySize: 3072, tags: { 'keyturn-tenant': byok } });
  step(`contoso-admin created ${keyName} in contoso-byok, tagged keyturn-tenant=${byok} (proof of control)`);
  const arm = authorizationClient(ARM_URL, ca, 'contoso-admin');
  const scope = `/subscriptions/${DEFAULT_SUBSCRIPTION}/resourceGroups/${DEFAULT_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/contoso-byok/keys/${keyName}`;
  const assignment = randomUUID();
  await arm.roleAssignments.create(scope, assignment, {
    roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoServiceEncryptionUser.id),
    principalId: resolveObjectId('keyturn-app') as string,
    principalType: 'ServicePrincipal',
  });
  step(`contoso-admin granted keyturn-app '${ROLES.keyVaultCryptoServiceEncryptionUser.roleName}' on the key`);
  const onboarded = await api('POST', 'tenants', { tenantId: byok, topology: 'byok', keyUrl: `${BYOK_URL}/keys/${keyName}`, adminContacts: ['keys@contoso.example'] });
  const bt = must(onboarded, 201, 'BYOK onboarding').tenant;
  step(`onboarded ${byok}: tag checked, key claimed, wrap/unwrap probe passed; pinned ${short(bt.activeKid)} (= ${key.properties.version?.slice(0, 8)}…)`);
  const byokContent = await protectOffline(byok, 'customer secret');
  step(`content protected offline with jose; it ${await open(byok, byokContent.jwe)}`);
  const revoked = must(await api('POST', `tenants/${byok}/revoke`, { confirm: byok, reason: 'demo: contract ended' }), 200, 'revoke');
  step(`revoked: state ${revoked.tenant.state}, complete ${revoked.complete}; remaining: ${revoked.remaining.join('; ')}`);
  step(`all use stopped at once: the content ${await open(byok, byokContent.jwe)}`);
  await arm.roleAssignments.delete(scope, assignment);
  step("contoso-admin removed keyturn-app's assignment on the key");
  let final: Json = revoked;
  for (let i = 0; i < 30 && !final.complete; i++) {
    final = must(await api('POST', `tenants/${byok}/revoke`, { confirm: byok, reason: 'demo: contract ended' }), 200, 'revoke');
    if (!final.complete) await new Promise((r) => setTimeout(r, 1000));
  }
  step(`revoke verified by probing (the vault answers 403): complete ${final.complete}`);
  step(`the BYOK content is unreadable: ${await open(byok, byokContent.jwe)}`);
  if (!final.complete || t.state !== 'active') process.exit(1);
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(`demo:tenant-keys failed: ${e.message}`);
    process.exit(1);
  });
}
