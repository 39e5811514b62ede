/**
 * Breach playbooks on the real local stack (real SDK clients, one stack for the file):
 * key-leaked over a service-managed tenant, a BYOK tenant in `contoso-byok`, the signing
 * key and a managed credential (its renewal already in grace after a near-expiry event:
 * the old version retires at once); unauthorized-use naming `intruder` (direct
 * assignments on Keyturn's vault removed, its next call 403; the one in the customer's
 * vault Keyturn may not even read; `keyturn-app` refused); hsm-vulnerability with and
 * without exposure; and a fleet-wide algorithm-weakness (2048 → 3072) that waits for a second approver.
 * Key sets: a fleet-wide run covers every set (named or not), listed a page at a time. An assignment
 * inherited from the resource group cannot be created on the local ARM by any seeded
 * principal: that classification is covered by the unit tests (test/unit/playbooks).
 */
import { CosmosClient } from '@azure/cosmos';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { cosmosEncryptionKeySetStore } from '../../../shared/adapters/keySets/cosmosEncryptionKeySets';
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack } from '../../helpers/stack';

const SCOPE_OF = (vault: string) => `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/keyturn-local/providers/Microsoft.KeyVault/vaults/${vault}`;
const INTRUDER = resolveObjectId('intruder')!;

describe('When breach playbooks run on the local stack', () => {
  let stack: TestStack;
  let api: string;

  beforeAll(async () => {
    stack = await startStack({
      env: {
        KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *',
        KEYTURN_INCIDENT_VERIFY_SCHEDULE: '0 0 0 1 1 *',
        KEYTURN_TENANT_PROBE_SCHEDULE: '0 0 0 1 1 *',
        // Service-managed tenant keys start below the later policy, so algorithm-weakness has something to rekey.
        KEYTURN_TENANT_KEY_BITS: '2048',
        // …and so do key sets' KEKs.
        KEYTURN_KEYSET_KEK_BITS: '2048',
        KEYTURN_PLAYBOOK_VAULT_SCOPES: `local=${SCOPE_OF('keyturn-local')},contoso-byok=${SCOPE_OF('contoso-byok')}`,
      },
    });
    api = `${stack.host!.url}/api`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => call('POST', `${api}/${path}`, { body, headers });
  const get = async (path: string) => (await call('GET', `${api}/${path}`)).json();
  const tenant = async (id: string) => (await get(`tenants/${id}`)).tenant;
  const incident = (id: string) => get(`incidents/${id}`);
  const events = (view: { timeline: { event: string }[] }) => view.timeline.map((e) => e.event);
  const open = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await post('incidents', { severity: 'P1', reportedBy: 'alice', ...body }, headers);
    expect({ status: res.status, body: res.status === 202 ? undefined : res.json() }).toEqual({ status: 202, body: undefined });
    return res.json().incidentId as string;
  };
  const protect = (id: string, text: string) => post(`tenants/${id}/protect`, { plaintext: Buffer.from(text).toString('base64') });
  const token = async () => (await post('tokens', { claims: { sub: 'svc-1', aud: 'api://orders' }, expiresInSeconds: 600 })).json<{ token: string; kid: string }>();

  let oldJwe: string;
  let contosoAssignment: string;
  let fabrikamKid: string;

  test('then key-leaked compromises every leaked version: rekeys, BYOK rekey-required with a task, signing rolled, credential renewed without grace', async () => {
    expect((await post('tenants', { tenantId: 'fabrikam', topology: 'service-managed', adminContacts: ['keys@fabrikam.example'], requestedBy: 'alice' })).status).toBe(201);
    const before = await tenant('fabrikam');
    fabrikamKid = before.activeKid;
    const p = await protect('fabrikam', 'old content');
    expect(p.status).toBe(200);
    oldJwe = p.json().jwe;
    // The BYOK tenant: contoso-admin's tagged key, Keyturn may use it.
    const byok = stack.vaults['contoso-byok']!;
    const key = await byok.keyClient('contoso-admin').createRsaKey('contoso-tk', { keySize: 3072, tags: { 'keyturn-tenant': 'contoso' } });
    contosoAssignment = randomUUID();
    await stack.arm.client('contoso-admin').roleAssignments.create(`${byok.scope}/keys/contoso-tk`, contosoAssignment, {
      roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoServiceEncryptionUser.id),
      principalId: resolveObjectId('keyturn-app')!,
      principalType: 'ServicePrincipal',
    });
    expect((await post('tenants', { tenantId: 'contoso', topology: 'byok', keyUrl: `${byok.url}/keys/contoso-tk` })).status).toBe(201);
    const oldToken = await token();
    const now = await stack.keyVault.now();
    const secret = await stack.keyVault.secretClient().setSecret('orders-api-key', randomBytes(32).toString('base64'), {
      tags: { 'keyturn-provider': 'symmetric' },
      expiresOn: new Date(now.getTime() + 30 * 86_400_000),
    });

    const headers = { 'Idempotency-Key': 'leak-1' };
    const body = { type: 'key-leaked', scope: { tenants: ['fabrikam', 'contoso'], signingKeys: [oldToken.kid], credentials: ['local/orders-api-key'] }, description: 'keys in a crash dump' };
    const id = await open(body, headers);
    // The same incident posted twice with one Idempotency-Key: one incident, one run.
    expect(await open(body, headers)).toBe(id);

    const view = await incident(id);
    expect(view.incident).toMatchObject({ progress: 'contained', state: 'awaiting-action' });
    expect(events(view)).toEqual(expect.arrayContaining(['playbook-planned', 'playbook.rule', 'tenant.rekeyed', 'tenant.version-compromised', 'signing.emergency-rollover', 'credential.renewed', 'task.opened']));
    expect(events(view).filter((e) => e === 'tenant.rekeyed')).toHaveLength(1);
    expect(view.timeline.filter((e: { event: string }) => e.event.includes('.')).every((e: { actor: { kind: string } }) => e.actor.kind === 'system')).toBe(true);

    // Service-managed: a new version; the leaked one is compromised, left /keys, still opens old content.
    const after = await tenant('fabrikam');
    expect(after.activeKid).not.toBe(fabrikamKid);
    expect(after.versions.find((v: { kid: string }) => v.kid === fabrikamKid)).toMatchObject({ compromised: true });
    const published = (await get('tenants/fabrikam/keys')).keys.map((k: { kid: string }) => k.kid);
    expect(published).not.toContain(fabrikamKid);
    expect((await post('tenants/fabrikam/unprotect', { jwe: oldJwe })).json()).toMatchObject({ plaintext: Buffer.from('old content').toString('base64') });
    // BYOK: no new content until the customer names a new key; a task for the customer.
    const refused = await protect('contoso', 'new content');
    expect({ status: refused.status, code: refused.json().code }).toEqual({ status: 409, code: 'TENANT_REKEY_REQUIRED' });
    expect(view.tasks).toEqual([expect.objectContaining({ title: expect.stringContaining('tenant contoso'), state: 'open' })]);
    expect(key.id).toBeDefined();
    // Signing: jose rejects the old token against the JWKS now published.
    const jwks = createLocalJWKSet(await get('.well-known/jwks.json'));
    await expect(jwtVerify(oldToken.token, jwks, { issuer: stack.env.KEYTURN_ISSUER, audience: 'api://orders', currentDate: await stack.keyVault.now() })).rejects.toThrow();
    const fresh = await token();
    await expect(jwtVerify(fresh.token, jwks, { issuer: stack.env.KEYTURN_ISSUER, audience: 'api://orders', currentDate: await stack.keyVault.now() })).resolves.toBeDefined();
    // Credential: the old version is disabled right after the new one was promoted (no grace).
    const renewed = view.timeline.find((e: { event: string }) => e.event === 'credential.renewed');
    expect(renewed.evidence).toMatchObject({ oldVersionDisabled: true, state: 'completed' });
    const old = await stack.keyVault.secretClient().getSecret('orders-api-key', { version: secret.properties.version! }).catch(() => undefined);
    const props = old?.properties ?? (await (async () => {
      for await (const v of stack.keyVault.secretClient().listPropertiesOfSecretVersions('orders-api-key')) if (v.version === secret.properties.version) return v;
      return undefined;
    })());
    expect(props?.enabled).toBe(false);
    expect(await get(`incidents/${id}/verify`)).toMatchObject({ ok: true });
  });

  test('then unauthorized-use rekeys nothing, removes intruder\'s direct assignments (its next call 403), refuses keyturn-app, waits for the root cause', async () => {
    const own = stack.vaults['keyturn-local']!;
    const byok = stack.vaults['contoso-byok']!;
    await stack.keyVault.secretClient().setSecret('shared-secret', 'not-a-real-one');
    await stack.arm.client('keyturn-app').roleAssignments.create(own.scope, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultSecretsUser.id), principalId: INTRUDER });
    // In the customer's vault: Keyturn may not even read its assignments there (nothing it could act on).
    await stack.arm.client('contoso-admin').roleAssignments.create(byok.scope, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultReader.id), principalId: INTRUDER });
    await stack.arm.client('keyturn-app').roleAssignments.create(`${own.scope}/secrets/shared-secret`, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultSecretsUser.id), principalId: INTRUDER });
    await expect(own.secretClient('intruder').getSecret('shared-secret')).resolves.toBeDefined();
    const kidBefore = (await tenant('fabrikam')).activeKid;
    const signerBefore = (await token()).kid;

    const id = await open({ type: 'unauthorized-use', scope: { principals: [INTRUDER, 'keyturn-app'], vaults: ['local', 'contoso-byok'] }, description: 'reads from an unknown principal' });
    const view = await incident(id);
    expect(events(view)).toEqual(expect.arrayContaining(['playbook.rule', 'access.assignments-listed', 'access.assignment-removed', 'access.refused-protected']));
    expect(view.timeline.find((e: { event: string }) => e.event === 'playbook.rule').evidence.rule).toMatch(/rekeying does not help/);
    await expect(own.secretClient('intruder').getSecret('shared-secret')).rejects.toMatchObject({ statusCode: 403 });
    expect((await tenant('fabrikam')).activeKid).toBe(kidBefore);
    expect((await token()).kid).toBe(signerBefore);
    expect(view.timeline.filter((e: { event: string }) => e.event === 'access.assignment-removed')).toHaveLength(2);
    // The root cause is advisory: listed open, but the incident is contained (no blocking task).
    expect(view.tasks).toEqual([expect.objectContaining({ title: expect.stringContaining('root cause'), state: 'open', blocking: false })]);
    expect(view.incident.state).toBe('contained');
    for (const t of view.tasks) {
      const done = await post(`incidents/${id}/tasks/${t.taskId}`, { state: 'done', note: 'handled', ...(t.title.includes('root cause') ? { finding: 'a CI token with a stale role' } : {}) });
      expect(done.status).toBe(200);
    }
    expect((await incident(id)).incident.state).toBe('contained');
  });

  test('then hsm-vulnerability records the advisory; without exposure nothing is rekeyed, with exposure the tenant keys on the vault are', async () => {
    const kid = (await tenant('fabrikam')).activeKid;
    const calm = await open({ type: 'hsm-vulnerability', scope: { vaults: ['local'] }, details: { advisory: 'HSM-2026-01', exposed: false }, description: 'firmware advisory' });
    expect(events(await incident(calm))).toEqual(expect.arrayContaining(['playbook.advisory', 'playbook.no-rekey']));
    expect((await tenant('fabrikam')).activeKid).toBe(kid);
    const exposed = await open({ type: 'hsm-vulnerability', scope: { vaults: ['local'], tenants: ['fabrikam'] }, details: { advisory: 'HSM-2026-02', exposed: true }, description: 'keys may be exposed' });
    const view = await incident(exposed);
    expect(view.timeline.find((e: { event: string }) => e.event === 'tenant.rekeyed').evidence).toMatchObject({ tenantId: 'fabrikam', fromKid: kid });
    expect((await tenant('fabrikam')).activeKid).not.toBe(kid);
    expect(view.tasks.map((t: { title: string }) => t.title)).toEqual([]);
  });

  test('then a fleet-wide algorithm-weakness waits for a second approver, then rekeys and rolls exactly the RSA-2048 keys, and later keys are 3072', async () => {
    const before = await tenant('fabrikam');
    const weakSet = await call('PUT', `${api}/keysets/weak-kek`, { body: {} });
    expect(weakSet.status).toBe(201);
    const kekName = weakSet.json().keySet.kek.name as string;
    const kekBits = async () => Buffer.from((await stack.keyVault.keyClient().getKey(kekName)).key!.n!).length * 8;
    expect(await kekBits()).toBe(2048);
    // The set is not named: `all: true` lists every set (the key-set store's paged listing).
    const id = await open({ type: 'algorithm-weakness', scope: { all: true }, details: { policy: { rsaMinBits: 3072 } }, description: 'RSA-2048 deprecated' });
    expect((await incident(id)).incident.state).toBe('awaiting-approval');
    expect((await tenant('fabrikam')).activeKid).toBe(before.activeKid);
    const self = await post(`incidents/${id}/approve`, { approvedBy: 'alice' });
    expect({ status: self.status, code: self.json().code }).toEqual({ status: 409, code: 'APPROVER_IS_REQUESTER' });
    const ok = await post(`incidents/${id}/approve`, { approvedBy: 'bob' });
    expect(ok.status).toBe(200);
    const view = ok.json();
    expect(view.incident).toMatchObject({ approval: { requestedBy: 'alice', approvedBy: 'bob' } });
    expect((await get('policy/keys')).rsaMinBits).toBe(3072);
    const counts = view.timeline.find((e: { event: string }) => e.event === 'playbook.counts').evidence.counts;
    // fabrikam (2048) is rekeyed; contoso's customer key is 3072 already: no task; the RSA-2048 signing keys roll.
    expect(counts).toMatchObject({ tenantKeys: 1, customerTasks: 0, keyEncryptionKeys: 1 });
    // The KEK's new version follows the raised policy; the data keys are re-wrapped under it.
    expect(await kekBits()).toBe(3072);
    expect(view.timeline.find((e: { event: string }) => e.event === 'keyset.kek-rotated').evidence).toMatchObject({ set: 'weak-kek', rewrapped: 1 });
    expect(counts.signingKeys).toBeGreaterThanOrEqual(1);
    const after = await tenant('fabrikam');
    expect(after.activeKid).not.toBe(before.activeKid);
    const bits = (n: string) => Buffer.from(n, 'base64url').length * 8;
    const publishedN = async (tenantId: string, kid: string) => (await get(`tenants/${tenantId}/keys`)).keys.find((k: { kid: string }) => k.kid === kid).n as string;
    expect(bits(await publishedN('fabrikam', after.activeKid))).toBe(3072);
    const signer = (await get('.well-known/jwks.json')).keys.find((k: { kid: string }) => k.kid === (view.timeline.find((e: { event: string }) => e.event === 'signing.replaced').evidence.signingKid));
    expect(bits(signer.n)).toBe(3072);
    // A later creation follows the policy, although KEYTURN_TENANT_KEY_BITS says 2048.
    expect((await post('tenants', { tenantId: 'northwind', topology: 'service-managed', requestedBy: 'alice' })).status).toBe(201);
    const nw = await tenant('northwind');
    expect(bits(await publishedN('northwind', nw.activeKid))).toBe(3072);
    expect(await get(`incidents/${id}/verify`)).toMatchObject({ ok: true });
  });

  test('then the key-set store lists every set a page at a time (the listing all: true reads)', async () => {
    for (const setId of ['listed-a', 'listed-b']) expect((await call('PUT', `${api}/keysets/${setId}`, { body: {} })).status).toBe(201);
    const cosmos = new CosmosClient({
      endpoint: stack.env.KEYTURN_COSMOS_ENDPOINT!,
      key: stack.env.KEYTURN_COSMOS_KEY,
      agent: new Agent({ ca: readFileSync(stack.env.KEYTURN_COSMOS_CA_FILE!, 'utf8') }),
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const db = cosmos.database(stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn');
    const store = cosmosEncryptionKeySetStore(db.container('keySets'), db.container('keySetItems'), async () => undefined);
    const pages: string[][] = [];
    let continuation: string | undefined;
    do {
      const page = await store.listSets({ maxItems: 1, ...(continuation ? { continuation } : {}) });
      pages.push(page.items.map((i) => i.doc.setId));
      continuation = page.continuation;
    } while (continuation && pages.length < 20);
    expect(pages.flat()).toEqual(['listed-a', 'listed-b', 'weak-kek']);
    expect(pages.length).toBe(3);
    cosmos.dispose();
  });

  test('then the emergency signing rollover door with compromised: true opens (once per key) a key-leaked incident recording what it did', async () => {
    const signer = (await token()).kid;
    const body = { reason: 'key in a support bundle', compromised: true, kid: signer, requestedBy: 'alice' };
    const first = await post('signing-keys/rollover', body);
    expect(first.status).toBe(200);
    const { incidentId } = first.json();
    expect(incidentId).toEqual(expect.any(String));
    expect((await post('signing-keys/rollover', body)).json().incidentId).toBe(incidentId);
    const view = await incident(incidentId);
    expect(view.incident).toMatchObject({ type: 'key-leaked', scope: { signingKeys: [signer] } });
    const recorded = view.timeline.filter((e: { event: string }) => e.event === 'signing.emergency-rollover');
    expect(recorded).toHaveLength(1);
    expect(recorded[0].evidence).toMatchObject({ compromisedKid: signer, disabledInKeyVault: true });
  });

  test('then a BYOK tenant losing access opens one access-lost incident per loss', async () => {
    const byok = stack.vaults['contoso-byok']!;
    await stack.arm.client('contoso-admin').roleAssignments.delete(`${byok.scope}/keys/contoso-tk`, contosoAssignment);
    const probe = async () => {
      const done = /Executed 'Functions\.tenantAccessProbes'/;
      const before = stack.host!.logs().filter((l) => done.test(l)).length;
      expect((await call('POST', `${stack.host!.url}/admin/functions/tenantAccessProbes`, { body: { input: '' } })).status).toBe(202);
      await eventually(() => stack.host!.logs().filter((l) => done.test(l)).length > before || undefined, 'the probe to run', 30_000, 200);
    };
    await probe();
    await stack.keyVault.moveClock(11 * 60);
    await probe();
    await probe();
    const lost = (await get('incidents?type=access-lost')).incidents.filter((i: { scope: { tenants?: string[] } }) => i.scope.tenants?.includes('contoso'));
    expect(lost).toHaveLength(1);
    expect(events(await incident(lost[0].incidentId))).toContain('tenant.access-lost');
  });
});
