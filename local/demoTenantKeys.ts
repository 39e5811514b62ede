/**
 * `npm run demo:tenant-keys` (with `npm start` running): both tenant-key topologies end
 * to end, step by step. A service-managed tenant: content protected offline with jose,
 * a rekey, old content still opens, the changeover ends (the emulator's clock moved, the
 * resume timer archives the previous version). A BYOK tenant in the customer's vault
 * `contoso-byok`: `contoso-admin` creates and tags the key and grants Keyturn, content
 * is protected offline, the tenant is revoked, `contoso-admin` removes the assignment,
 * the revoke completes and the content is unreadable. Then the operations of part 2 on
 * the service-managed tenant: a backup, the key soft-deleted and restored by recovery; an
 * export requested by one person, approved by a second, opened with the two `openssl`
 * commands of docs/tenant-keys.md (in a temp dir deleted at the end), the recovered
 * private key opening earlier content; a switch to BYOK, earlier content still opening.
 * Never prints key material.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyClient } from '@azure/keyvault-keys';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, importJWK } from 'jose';
import { authorizationClient, roleDefinitionIdFor } from './arm/client';
import { requestJson } from './httpJson';
import { DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION } from './keyvault';
import { credentialFor, resolveObjectId } from './keyvault/principals';
import { ROLES } from './keyvault/rbac';
import { readDemoCa } from './demoCa';

const APP_URL = process.env.KEYTURN_DEMO_APP_URL ?? 'http://127.0.0.1:7071';
const VAULT_URL = process.env.KEYTURN_DEMO_VAULT_URL ?? `https://127.0.0.1:${process.env.KEYVAULT_PORT || 8443}`;
const BYOK_URL = process.env.KEYTURN_DEMO_BYOK_URL ?? `https://127.0.0.1:${process.env.KEYVAULT_BYOK_PORT || 8445}`;
const ARM_URL = process.env.KEYTURN_DEMO_ARM_URL ?? `https://127.0.0.1:${process.env.ARM_PORT || 8446}`;
const HOUR_S = 3600;

type Json = Record<string, any>;

async function main(): Promise<void> {
  const ca = readDemoCa();
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

  const opensAs = async (tenantId: string, jwe: string, text: string) => {
    const line = await open(tenantId, jwe);
    if (!line.startsWith(`opens: "${text}"`)) throw new Error(`content of ${tenantId} should open as "${text}"; it ${line}`);
    return line;
  };

  console.log(`\n== Backup and restore (${sm}): Key Vault's backup blob, and recovery of a soft-deleted key ==`);
  const backup = must(await api('POST', `tenants/${sm}/backups`, {}), 201, 'backup').backup;
  step(`backed up ${backup.versions.length} versions to ${backup.blob} (SHA-256 ${backup.sha256.slice(0, 16)}…, in the blob metadata and the record)`);
  const smKeyName = /\/keys\/([^/]+)\//.exec(t.activeKid)![1]!;
  const operatorKeys = new KeyClient(VAULT_URL, credentialFor('operator'), tls);
  await (await operatorKeys.beginDeleteKey(smKeyName)).pollUntilDone();
  step(`the operator soft-deleted ${smKeyName} in Keyturn's vault (KeyClient.beginDeleteKey): old content ${await open(sm, before.jwe)}`);
  must(await api('POST', `tenants/${sm}/restore`, { backupId: backup.id }), 200, 'restore');
  step(`restored from ${backup.id}: the soft-deleted key was recovered (no blob needed); old content ${await opensAs(sm, before.jwe, 'written before the rekey')}`);

  console.log('\n== Export under dual control: alice asks, bob approves, openssl opens the package ==');
  const dir = mkdtempSync(join(tmpdir(), 'keyturn-demo-export-'));
  try {
    const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
    writeFileSync(join(dir, 'requester.key.pem'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const requesterPublicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    step(`alice made an RSA-3072 key pair (private key in ${dir}, never sent)`);
    // Local stack only: identities come from the body (in Azure, from App Service authentication).
    const requested = must(await api('POST', `tenants/${sm}/exports`, { requesterPublicKey, reason: 'demo: leaving the service', requestedBy: 'alice' }), 201, 'export request').export;
    step(`alice requested an export: ${requested.state}, her key's SHA-256 ${requested.publicKeySha256.slice(0, 16)}…`);
    const early = await api('GET', `tenants/${sm}/exports/${requested.id}/package?requestedBy=alice`);
    step(`the package before approval: ${early.status} ${early.json.code}`);
    const self = await api('POST', `tenants/${sm}/exports/${requested.id}/approve`, { publicKeySha256: requested.publicKeySha256, approvedBy: 'alice' });
    step(`alice approving her own request: ${self.status} ${self.json.code}`);
    const approved = must(await api('POST', `tenants/${sm}/exports/${requested.id}/approve`, { publicKeySha256: requested.publicKeySha256, approvedBy: 'bob' }), 200, 'approve').export;
    step(`bob approved, naming the same SHA-256: ${approved.state}`);
    const pkg = must(await api('GET', `tenants/${sm}/exports/${requested.id}/package?requestedBy=alice`), 200, 'package');
    step(`alice fetched the package: ${pkg.keys.length} versions (${pkg.keys.map((k: Json) => k.state).join(', ')}), the password encrypted to her key`);
    writeFileSync(join(dir, 'password.bin'), Buffer.from(pkg.encryptedPassword, 'base64url'));
    const run = (command: string) => {
      console.log(`      $ ${command}`);
      execFileSync(command.split(' ')[0]!, command.split(' ').slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    };
    step('alice opens it with the commands of docs/tenant-keys.md (password.bin = encryptedPassword, base64url-decoded):');
    run('openssl pkeyutl -decrypt -inkey requester.key.pem -in password.bin -out password.txt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256');
    const recovered = new Map<string, ReturnType<typeof createPrivateKey>>();
    pkg.keys.forEach((k: Json, i: number) => {
      if (!k.pkcs8) return;
      writeFileSync(join(dir, `key-${i}.enc.pem`), k.pkcs8);
      run(`openssl pkey -in key-${i}.enc.pem -passin file:password.txt -out key-${i}.pem`);
      recovered.set(k.kid, createPrivateKey(readFileSync(join(dir, `key-${i}.pem`))));
    });
    const kidBefore = decodeProtectedHeader(before.jwe).kid!;
    const privateKey = recovered.get(kidBefore);
    if (!privateKey) throw new Error(`the package holds no private key of ${kidBefore}`);
    const opened = new TextDecoder().decode((await compactDecrypt(before.jwe, privateKey)).plaintext);
    if (opened !== 'written before the rekey') throw new Error(`the recovered key opened "${opened}"`);
    step(`openssl opened ${recovered.size} private keys; the one of ${short(kidBefore)} opens earlier content with jose compactDecrypt: "${opened}"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  step(`deleted ${dir} (password and private keys); leaving for good would now be a revoke`);

  console.log(`\n== Switch to BYOK (${sm}): a rekey to a key in the customer's vault ==`);
  const switchKey = `demo-sw-${suffix}`;
  await admin.createRsaKey(switchKey, { keySize: 3072, tags: { 'keyturn-tenant': sm } });
  const switchScope = `/subscriptions/${DEFAULT_SUBSCRIPTION}/resourceGroups/${DEFAULT_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/contoso-byok/keys/${switchKey}`;
  await arm.roleAssignments.create(switchScope, randomUUID(), {
    roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoServiceEncryptionUser.id),
    principalId: resolveObjectId('keyturn-app') as string,
    principalType: 'ServicePrincipal',
  });
  step(`contoso-admin created ${switchKey} in contoso-byok, tagged keyturn-tenant=${sm}, and granted keyturn-app`);
  const switched = must(await api('POST', `tenants/${sm}/topology`, { to: 'byok', keyUrl: `${BYOK_URL}/keys/${switchKey}`, reason: 'demo: the customer brings its key' }), 200, 'topology').tenant;
  step(`switched: topology ${switched.topology}, state ${switched.state}, key in use ${short(switched.activeKid)}`);
  const afterSwitch = must(await api('POST', `tenants/${sm}/protect`, { plaintext: Buffer.from('written after the switch').toString('base64') }), 200, 'protect');
  step(`new content uses the customer's key: ${short(afterSwitch.kid)}; it ${await opensAs(sm, afterSwitch.jwe, 'written after the switch')}`);
  step(`content from before the switch ${await opensAs(sm, before.jwe, 'written before the rekey')}`);
  if (switched.topology !== 'byok' || afterSwitch.kid !== switched.activeKid) process.exit(1);
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(`demo:tenant-keys failed: ${e.message}`);
    process.exit(1);
  });
}
