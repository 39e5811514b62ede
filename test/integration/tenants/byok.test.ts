/**
 * BYOK tenants on the real local stack, with the customer's vault `contoso-byok`:
 * `contoso-admin` creates and tags keys there and grants (or removes) Keyturn's role
 * with the real AuthorizationManagementClient; Keyturn reaches it as `keyturn-app`.
 * Onboarding refusals; jose content; access removed without a revoke → `access-lost`
 * only after the probe window (the emulator's clock moved), access back → active; a
 * rekey to another key and to a new version the customer created; a redelivered BYOK
 * KeyNearExpiry → one RekeyNeeded; revoke → use stops, the customer removes the
 * assignment, `complete` becomes true; a new key after the revoke protects again.
 * Notifications arrive at a subscriber on Keyturn's topic.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CompactEncrypt, importJWK } from 'jose';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { eventually } from '../../helpers/process';
import { PROJECT_ROOT, type TestStack, call, startStack } from '../../helpers/stack';
import { type Subscriber, startSubscriber } from '../../helpers/subscriber';

const MINUTE_S = 60;

describe('When a BYOK tenant uses a key in the customer vault contoso-byok', () => {
  let stack: TestStack;
  let api: string;
  let events: Subscriber;
  const TENANT = 'contoso';

  beforeAll(async () => {
    // Timers never fire on their own here: the test runs them (no race with the clock moves).
    stack = await startStack({ env: { KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *', KEYTURN_TENANT_PROBE_SCHEDULE: '0 0 0 1 1 *' } });
    api = `${stack.host!.url}/api`;
    events = await startSubscriber();
    const sub = await call('POST', `${stack.eventGrid.url}/management/subscriptions`, {
      ca: stack.ca,
      body: { name: 'tenant-notices', topic: '*', endpoint: events.url, includedEventTypes: ['Keyturn.TenantKeyRekeyed', 'Keyturn.TenantKeyArchived', 'Keyturn.TenantKeyRevoked', 'Keyturn.TenantKeyAccessLost', 'Keyturn.TenantKeyRekeyNeeded'] },
    });
    expect(sub.status).toBe(201);
  });
  afterAll(async () => {
    await events?.close();
    await stack?.stop();
  });

  const byok = () => stack.vaults['contoso-byok']!;
  const admin = () => byok().keyClient('contoso-admin');
  const arm = () => stack.arm.client('contoso-admin');
  const post = (path: string, body: unknown) => call('POST', `${api}/${path}`, { body });
  const tenant = async (id = TENANT) => (await call('GET', `${api}/tenants/${id}`)).json().tenant;
  const received = (type: string) => events.receivedEvents<{ id: string; eventType: string; data: Record<string, unknown> }>().filter((e) => e.eventType === type);

  async function customerKey(name: string, tags: Record<string, string> = { 'keyturn-tenant': TENANT }) {
    const key = await admin().createRsaKey(name, { keySize: 2048, tags });
    return { key, url: `${byok().url}/keys/${name}` };
  }
  async function grant(name: string, role: { id: string } = ROLES.keyVaultCryptoServiceEncryptionUser): Promise<string> {
    const assignment = randomUUID();
    await arm().roleAssignments.create(`${byok().scope}/keys/${name}`, assignment, {
      roleDefinitionId: roleDefinitionIdFor(role.id),
      principalId: resolveObjectId('keyturn-app') as string,
      principalType: 'ServicePrincipal',
    });
    return assignment;
  }
  const ungrant = (name: string, assignment: string) => arm().roleAssignments.delete(`${byok().scope}/keys/${name}`, assignment);

  /** Runs a timer through the host's admin endpoint (fire-and-forget) and waits for its log line. */
  async function runTimer(name: string, done: RegExp) {
    const before = stack.host!.logs().filter((l) => done.test(l)).length;
    expect((await call('POST', `${stack.host!.url}/admin/functions/${name}`, { body: { input: '' } })).status).toBe(202);
    await eventually(() => stack.host!.logs().filter((l) => done.test(l)).length > before || undefined, `${name} to run`, 30_000, 200);
  }
  const probe = () => runTimer('tenantAccessProbes', /Executed 'Functions\.tenantAccessProbes'/);

  async function joseProtect(plaintext: string) {
    const [jwk] = (await call('GET', `${api}/tenants/${TENANT}/keys`)).json<{ keys: Record<string, string>[] }>().keys;
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk!.kid })
      .encrypt(await importJWK(jwk!, 'RSA-OAEP-256'));
  }
  const unprotect = (jwe: string) => post(`tenants/${TENANT}/unprotect`, { jwe });
  async function opens(jwe: string, plaintext: string) {
    const res = await unprotect(jwe);
    expect({ status: res.status, body: res.json() }).toMatchObject({ status: 200, body: { plaintext: Buffer.from(plaintext).toString('base64') } });
  }

  let first: { url: string; assignment: string; kid: string };
  let before: string;

  test('then onboarding is refused (400 naming keyUrl) without the tag, for Keyturn\'s own vault, off the allow-list, with a version, without access', async () => {
    const refused = async (body: Record<string, unknown>, why: RegExp) => {
      const res = await post('tenants', { tenantId: TENANT, topology: 'byok', ...body });
      expect({ status: res.status, field: res.json().field }).toEqual({ status: 400, field: 'keyUrl' });
      expect(res.json().detail ?? res.json().message ?? res.text).toMatch(why);
    };
    const untagged = await customerKey('untagged', {});
    await grant('untagged');
    await refused({ keyUrl: untagged.url }, /tag keyturn-tenant/);
    await refused({ keyUrl: `${stack.keyVault.url}/keys/anything` }, /Keyturn's own vaults/);
    await refused({ keyUrl: 'https://evil.example.com/keys/k' }, /allow-list/);
    await refused({ keyUrl: `${untagged.url}/${untagged.key.properties.version}` }, /without a version/);
    const noRole = await customerKey('no-role');
    await refused({ keyUrl: noRole.url }, /may not read/);
    await refused({}, /required for topology byok/);
    expect((await call('GET', `${api}/tenants/${TENANT}`)).status).toBe(404);
  });

  test('then a tagged key Keyturn may use is onboarded (its current version pinned), and another tenant cannot take it', async () => {
    const k = await customerKey('contoso-tk');
    first = { url: k.url, assignment: await grant('contoso-tk'), kid: k.key.id! };
    const res = await post('tenants', { tenantId: TENANT, topology: 'byok', keyUrl: k.url, adminContacts: ['keys@contoso.example'] });
    expect(res.status).toBe(201);
    expect(res.json().tenant).toMatchObject({ topology: 'byok', state: 'active', activeKid: k.key.id });
    // The customer re-tags the key for another tenant: the claim still refuses it.
    await admin().updateKeyProperties('contoso-tk', k.key.properties.version!, { tags: { 'keyturn-tenant': 'contoso-two' } });
    const taken = await post('tenants', { tenantId: 'contoso-two', topology: 'byok', keyUrl: k.url });
    expect({ status: taken.status, field: taken.json().field }).toEqual({ status: 400, field: 'keyUrl' });
    expect(taken.text).toMatch(/another tenant holds this key/);
    await admin().updateKeyProperties('contoso-tk', k.key.properties.version!, { tags: { 'keyturn-tenant': TENANT } });

    before = await joseProtect('written with the first BYOK key');
    await opens(before, 'written with the first BYOK key');
  });

  test('then access removed without a revoke is access-lost only after the probe window, and access back is active again', async () => {
    await ungrant('contoso-tk', first.assignment);
    await probe();
    expect((await tenant()).state).toBe('active'); // one 403 is not a revoke
    await stack.keyVault.moveClock(11 * MINUTE_S);
    await probe();
    expect((await tenant()).state).toBe('access-lost');
    expect((await post(`tenants/${TENANT}/protect`, { plaintext: 'AA==' })).json().code).toBe('TENANT_ACCESS_LOST');
    expect((await unprotect(before)).json().code).toBe('TENANT_ACCESS_LOST');
    await probe(); // still lost: no second notice
    await eventually(() => received('Keyturn.TenantKeyAccessLost').length >= 1 || undefined, 'the AccessLost notice', 20_000, 100);

    first.assignment = await grant('contoso-tk');
    await probe();
    expect((await tenant()).state).toBe('active');
    await opens(before, 'written with the first BYOK key');
    const lost = received('Keyturn.TenantKeyAccessLost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.data).toMatchObject({ tenantId: TENANT, adminContacts: ['keys@contoso.example'] });
  });

  test('then a rekey names another key, and a new version the customer creates is detected by the probes', async () => {
    const other = await customerKey('contoso-tk2');
    await grant('contoso-tk2');
    const res = await post(`tenants/${TENANT}/rekey`, { reason: 'customer rotation', keyUrl: other.url });
    expect(res.status).toBe(200);
    expect(res.json().tenant).toMatchObject({ state: 'changeover', activeKid: other.key.id });
    await opens(before, 'written with the first BYOK key');

    const newer = await admin().createRsaKey('contoso-tk2', { keySize: 2048, tags: { 'keyturn-tenant': TENANT } });
    await probe();
    const t = await eventually(async () => {
      const now = await tenant();
      return now.activeKid === newer.id ? now : undefined;
    }, 'the rekey to the new version', 30_000, 250);
    expect(t.versions.map((v: { kid: string }) => v.kid)).toEqual([first.kid, other.key.id, newer.id]);
    await eventually(() => received('Keyturn.TenantKeyRekeyed').length >= 2 || undefined, 'two Rekeyed notices', 20_000, 100);
    expect(received('Keyturn.TenantKeyRekeyed').map((e) => e.data.kid)).toEqual([other.key.id, newer.id]);
  });

  test('then a redelivered KeyNearExpiry of the BYOK version is one RekeyNeeded, and no rekey', async () => {
    const t = await tenant();
    const [, name, version] = /\/keys\/([^/]+)\/([^/]+)$/.exec(t.activeKid)!;
    const event = (id: string) => ({
      id,
      topic: byok().topic,
      subject: name,
      eventType: 'Microsoft.KeyVault.KeyNearExpiry',
      eventTime: new Date().toISOString(),
      dataVersion: '1',
      metadataVersion: '1',
      data: { Id: t.activeKid, VaultName: byok().vaultName, ObjectType: 'Key', ObjectName: name, Version: version, NBF: null, EXP: 1767225600 },
    });
    for (const id of ['near-1', 'near-1', 'near-2']) {
      const res = await call('POST', `${stack.host!.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, { body: [event(id)], headers: { 'aeg-event-type': 'Notification' } });
      expect(res.status).toBe(202);
    }
    await eventually(() => received('Keyturn.TenantKeyRekeyNeeded').length >= 1 || undefined, 'the RekeyNeeded notice', 20_000, 100);
    await new Promise((r) => setTimeout(r, 1000));
    expect(received('Keyturn.TenantKeyRekeyNeeded')).toHaveLength(1);
    expect((await tenant()).activeKid).toBe(t.activeKid);
  });

  test('then revoke stops all use at once, and complete is true only once the customer removed the assignment', async () => {
    const res = await post(`tenants/${TENANT}/revoke`, { confirm: TENANT, reason: 'contract ended' });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ complete: false, tenant: { state: 'revoked', activeKid: null } });
    expect(res.json().remaining.join(' ')).toMatch(/contoso-tk2/);
    expect((await post(`tenants/${TENANT}/protect`, { plaintext: 'AA==' })).json().code).toBe('TENANT_REVOKED');
    expect((await unprotect(before)).json().code).toBe('TENANT_REVOKED');
    await eventually(() => received('Keyturn.TenantKeyRevoked').length >= 1 || undefined, 'the Revoked notice', 20_000, 100);
    expect(received('Keyturn.TenantKeyRevoked')[0]!.data).toMatchObject({ tenantId: TENANT, topology: 'byok', customerAction: expect.stringMatching(/remove Keyturn's role assignments/) });

    // Still reachable: not complete.
    expect((await post(`tenants/${TENANT}/revoke`, { confirm: TENANT, reason: 'again' })).json()).toMatchObject({ complete: false });
    // The customer removes every assignment of keyturn-app on its keys.
    for await (const a of arm().roleAssignments.listForScope(byok().scope, { filter: `assignedTo('${resolveObjectId('keyturn-app')}')` })) {
      await arm().roleAssignments.deleteById(a.id!);
    }
    const done = await post(`tenants/${TENANT}/revoke`, { confirm: TENANT, reason: 'again' });
    expect(done.json()).toMatchObject({ complete: true, remaining: [] });
    expect(received('Keyturn.TenantKeyRevoked')).toHaveLength(1);
  });

  test('then a new key after the revoke protects again, and content under the revoked versions stays unreadable', async () => {
    const fresh = await customerKey('contoso-tk3');
    await grant('contoso-tk3');
    const res = await post(`tenants/${TENANT}/rekey`, { reason: 'new contract', keyUrl: fresh.url });
    expect(res.status).toBe(200);
    expect(res.json().tenant).toMatchObject({ state: 'active', activeKid: fresh.key.id });
    const now = await joseProtect('under the new key');
    await opens(now, 'under the new key');
    expect((await unprotect(before)).json().code).toBe('JWE_INVALID');
  });

  test('then, where Keyturn was given the right (KEYTURN_BYOK_SELF_UNASSIGN), a revoke removes its own assignment and completes at once', async () => {
    const other = await stack.startSecondHost({ KEYTURN_BYOK_SELF_UNASSIGN: `contoso-byok=${byok().scope}` });
    try {
      const at = (path: string, body: unknown) => call('POST', `${other.url}/api/${path}`, { body });
      const k = await customerKey('self-tk', { 'keyturn-tenant': 'selfco' });
      await grant('self-tk');
      await grant('self-tk', ROLES.roleBasedAccessControlAdministrator);
      expect((await at('tenants', { tenantId: 'selfco', topology: 'byok', keyUrl: k.url })).status).toBe(201);
      const res = await at('tenants/selfco/revoke', { confirm: 'selfco', reason: 'contract ended' });
      expect(res.json()).toMatchObject({ complete: true, remaining: [], tenant: { state: 'revoked' } });
      const left = [];
      for await (const a of arm().roleAssignments.listForScope(`${byok().scope}/keys/self-tk`, { filter: `assignedTo('${resolveObjectId('keyturn-app')}')` })) left.push(a);
      expect(left).toEqual([]);
      // The customer's key itself is untouched.
      expect((await admin().getKey('self-tk')).properties).toMatchObject({ enabled: true, version: k.key.properties.version });
    } finally {
      await other.stop();
    }
  });

  // Last: it moves the emulator's clock a day (and makes its own tenants).
  test('then `npm run demo:tenant-keys` walks both topologies against the running stack', () => {
    const run = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist', 'local', 'demoTenantKeys.js')], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        KEYTURN_DEMO_APP_URL: stack.host!.url,
        KEYTURN_DEMO_VAULT_URL: stack.keyVault.url,
        KEYTURN_DEMO_BYOK_URL: byok().url,
        KEYTURN_DEMO_ARM_URL: stack.arm.url,
        KEYTURN_DEMO_CA_FILE: stack.caFile,
      },
      encoding: 'utf8',
      timeout: 150_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/old content opens: "written before the rekey"/);
    expect(run.stdout).toMatch(/changeover over: state active; versions archived, active; \/keys publishes 1 key/);
    expect(run.stdout).toMatch(/all use stopped at once: the content refused: 409 TENANT_REVOKED/);
    expect(run.stdout).toMatch(/complete true/);
    // Part 2: backup and restore by recovery, a dual-control export opened by openssl, a switch to BYOK.
    expect(run.stdout).toMatch(/soft-deleted tenant-demo-sm-\S+ in Keyturn's vault \(KeyClient\.beginDeleteKey\): old content refused/);
    expect(run.stdout).toMatch(/restored from backup-\S+: the soft-deleted key was recovered \(no blob needed\); old content opens: "written before the rekey"/);
    expect(run.stdout).toMatch(/the package before approval: 409 EXPORT_NOT_APPROVED/);
    expect(run.stdout).toMatch(/alice approving her own request: 409 /);
    expect(run.stdout).toMatch(/bob approved, naming the same SHA-256: ready/);
    expect(run.stdout).toContain('$ openssl pkeyutl -decrypt -inkey requester.key.pem -in password.bin -out password.txt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256');
    expect(run.stdout).toContain('$ openssl pkey -in key-0.enc.pem -passin file:password.txt -out key-0.pem');
    expect(run.stdout).toMatch(/openssl opened 2 private keys; the one of \S+ opens earlier content with jose compactDecrypt: "written before the rekey"/);
    const tempDir = /deleted (\S+) \(password and private keys\)/.exec(run.stdout)?.[1];
    expect(tempDir && existsSync(tempDir)).toBe(false);
    expect(run.stdout).toMatch(/switched: topology byok, state changeover/);
    expect(run.stdout).toMatch(/new content uses the customer's key: \S+; it opens: "written after the switch"/);
    expect(run.stdout).toMatch(/content from before the switch opens: "written before the rekey"/);
  });
});
