/**
 * Dual-control export on the real local stack: the requester makes an RSA key pair with
 * `openssl`, a second identity approves by naming its SHA-256, and the requester opens
 * the package with exactly the commands of docs/tenant-keys.md (openssl pkeyutl and
 * openssl pkey, run by `sh`). The recovered private keys open content protected before
 * (jose compactDecrypt). Identities are the body's (local stack only: no Easy Auth here).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CosmosClient } from '@azure/cosmos';
import { Agent } from 'node:https';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { createPrivateKey } from 'node:crypto';
import { PROJECT_ROOT, type TestStack, call, startStack } from '../../helpers/stack';
import { eventually } from '../../helpers/process';
import { type Subscriber, startSubscriber } from '../../helpers/subscriber';
import { api, workdir } from './helpers';

const HOUR_S = 3600;
const TENANT = 'acme-export';
export const OPEN_COMMANDS = {
  password: [
    `jq -r '.encryptedPassword | . + ("=" * ((4 - length % 4) % 4))' package.json | tr '_-' '/+' | base64 -d > password.bin`,
    'openssl pkeyutl -decrypt -inkey requester.key.pem -in password.bin -out password.txt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256',
  ],
  key: (i: number) => [`jq -r '.keys[${i}].pkcs8' package.json > key-${i}.enc.pem`, `openssl pkey -in key-${i}.enc.pem -passin file:password.txt -out key-${i}.pem`],
  digest: `jq -S -j -c 'del(.sha256)' package.json | openssl dgst -sha256 -r`,
};

describe('When a service-managed tenant key is exported under dual control', () => {
  let stack: TestStack;
  let http: ReturnType<typeof api>;
  const tool = workdir();
  let publicKeyPem: string;
  let publicKeySha256: string;
  const jwes: string[] = [];
  let exportId: string;
  let events: Subscriber;

  beforeAll(async () => {
    stack = await startStack();
    http = api(stack);
    events = await startSubscriber();
    const sub = await call('POST', `${stack.eventGrid.url}/management/subscriptions`, {
      ca: stack.ca,
      body: { name: 'export-notices', topic: '*', endpoint: events.url, includedEventTypes: ['Keyturn.TenantKeyExportRequested', 'Keyturn.TenantKeyExported'] },
    });
    expect(sub.status).toBe(201);
    tool.sh('openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out requester.key.pem 2>/dev/null && openssl pkey -in requester.key.pem -pubout -out requester.pub.pem');
    publicKeyPem = tool.read('requester.pub.pem');
    publicKeySha256 = tool.sh('openssl pkey -pubin -in requester.pub.pem -outform DER | openssl dgst -sha256 -r').split(' ')[0]!;
  });
  afterAll(async () => {
    await events?.close();
    await stack?.stop();
    tool.remove();
  });

  test('then a tenant with two versions (a rekey) protects content under each', async () => {
    expect((await http.post('tenants', { tenantId: TENANT, topology: 'service-managed', adminContacts: ['sec@acme.example'] })).status).toBe(201);
    jwes.push(await http.protect(TENANT, 'before the rekey'));
    expect((await http.post(`tenants/${TENANT}/rekey`, { reason: 'yearly' })).status).toBe(200);
    jwes.push(await http.protect(TENANT, 'after the rekey'));
    expect(new Set(jwes.map((j) => decodeProtectedHeader(j).kid)).size).toBe(2);
  });

  test('then a weak or malformed requester key is a 400 naming requesterPublicKey', async () => {
    tool.sh('openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout -out weak.pub.pem');
    tool.sh('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout -out ec.pub.pem');
    for (const pem of [tool.read('weak.pub.pem'), tool.read('ec.pub.pem'), 'not a pem']) {
      const res = await http.post(`tenants/${TENANT}/exports`, { requesterPublicKey: pem, reason: 'leaving', requestedBy: 'alice' });
      expect([res.status, res.json().field]).toEqual([400, 'requesterPublicKey']);
    }
  });

  test('then the request awaits approval with the SHA-256 of the key openssl made, and the package is 409 before approval', async () => {
    const res = await http.post(`tenants/${TENANT}/exports`, { requesterPublicKey: publicKeyPem, reason: 'leaving the service', requestedBy: 'alice' });
    expect(res.status).toBe(201);
    const { export: exp } = res.json();
    expect(exp).toMatchObject({ state: 'awaiting-approval', publicKeySha256, requestedBy: 'alice' });
    exportId = exp.id;
    const early = await http.get(`tenants/${TENANT}/exports/${exportId}/package?requestedBy=alice`);
    expect([early.status, early.json().code]).toEqual([409, 'EXPORT_NOT_APPROVED']);
  });

  test('then the requester cannot approve, nor can anyone naming another SHA-256', async () => {
    const self = await http.post(`tenants/${TENANT}/exports/${exportId}/approve`, { publicKeySha256, approvedBy: 'alice' });
    expect([self.status, self.json().code]).toEqual([409, 'APPROVER_IS_REQUESTER']);
    const wrong = await http.post(`tenants/${TENANT}/exports/${exportId}/approve`, { publicKeySha256: 'ab'.repeat(32), approvedBy: 'bob' });
    expect([wrong.status, wrong.json().code]).toEqual([409, 'APPROVAL_DIGEST_MISMATCH']);
    const bad = await http.post(`tenants/${TENANT}/exports/${exportId}/approve`, { publicKeySha256: 'xyz', approvedBy: 'bob' });
    expect([bad.status, bad.json().field]).toEqual([400, 'publicKeySha256']);
  });

  test('then a second identity approves, only the requester fetches, and openssl opens every key with the documented commands', async () => {
    const res = await http.post(`tenants/${TENANT}/exports/${exportId}/approve`, { publicKeySha256, approvedBy: 'bob' });
    expect(res.status).toBe(200);
    expect(res.json().export).toMatchObject({ state: 'ready', approvedBy: 'bob' });
    const other = await http.get(`tenants/${TENANT}/exports/${exportId}/package?requestedBy=bob`);
    expect([other.status, other.json().code]).toEqual([403, 'EXPORT_REQUESTER_ONLY']);

    const pkgRes = await http.get(`tenants/${TENANT}/exports/${exportId}/package?requestedBy=alice`);
    expect(pkgRes.status).toBe(200);
    const pkg = pkgRes.json();
    expect(Object.keys(pkg).sort()).toEqual(['createdAt', 'encryptedPassword', 'exportId', 'keys', 'sha256', 'tenantId']);
    expect(pkg).toMatchObject({ exportId, tenantId: TENANT });
    expect(pkg.encryptedPassword).toMatch(/^[A-Za-z0-9_-]+$/);
    writeFileSync(join(tool.dir, 'package.json'), pkgRes.text);
    expect(tool.sh(OPEN_COMMANDS.digest).split(' ')[0]).toBe(pkg.sha256);

    for (const c of OPEN_COMMANDS.password) tool.sh(c);
    expect(tool.read('password.txt')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const tenant = (await http.get(`tenants/${TENANT}`)).json().tenant;
    expect(pkg.keys.map((k: { kid: string }) => k.kid)).toEqual(tenant.versions.map((v: { kid: string }) => v.kid));
    const privateKeys = new Map<string, ReturnType<typeof createPrivateKey>>();
    for (const [i, k] of (pkg.keys as { kid: string; state: string; pkcs8: string }[]).entries()) {
      expect(k.pkcs8).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      for (const c of OPEN_COMMANDS.key(i)) tool.sh(c);
      expect(tool.sh(`openssl asn1parse -in key-${i}.enc.pem | grep -c -E 'PBES2|PBKDF2|aes-256-cbc'`).trim()).toBe('3');
      privateKeys.set(k.kid, createPrivateKey(tool.read(`key-${i}.pem`)));
    }
    // The recovered private keys open the content protected before (and after) the rekey.
    const opened = [];
    for (const jwe of jwes) {
      const { plaintext } = await compactDecrypt(jwe, privateKeys.get(decodeProtectedHeader(jwe).kid!)!);
      opened.push(new TextDecoder().decode(plaintext));
    }
    expect(opened).toEqual(['before the rekey', 'after the rekey']);
  });

  test('then the admins were told of the request and of the export, once each, with no key material', async () => {
    type E = { id: string; eventType: string; data: Record<string, unknown> };
    const got = await eventually(async () => {
      const all = events.receivedEvents<E>();
      return all.some((e) => e.eventType === 'Keyturn.TenantKeyExported') ? all : undefined;
    }, 'the Exported notification', 30_000, 250);
    const ours = got.filter((e) => e.data.exportId === exportId);
    expect(ours.map((e) => [e.eventType, e.id])).toEqual([
      ['Keyturn.TenantKeyExportRequested', `${exportId}:exportRequested`],
      ['Keyturn.TenantKeyExported', `${exportId}:exported`],
    ]);
    expect(ours[1]!.data).toMatchObject({ tenantId: TENANT, adminContacts: ['sec@acme.example'], requestedBy: 'alice', approvedBy: 'bob' });
    expect(JSON.stringify(ours)).not.toMatch(/PRIVATE KEY|encryptedPassword/);
  });

  test('then no private key material is in Cosmos DB or the host logs', async () => {
    const { KEYTURN_COSMOS_ENDPOINT: endpoint, KEYTURN_COSMOS_KEY: key } = stack.env;
    const client = new CosmosClient({ endpoint: endpoint!, key: key!, agent: new Agent({ ca: stack.ca }), connectionPolicy: { enableEndpointDiscovery: false } });
    const db = client.database('keyturn');
    const everything: string[] = [];
    for (const c of ['tenants', 'tenantExports', 'tenantJobs']) everything.push(JSON.stringify((await db.container(c).items.query('SELECT * FROM c').fetchAll()).resources));
    everything.push(stack.allLogs().join('\n'));
    const text = everything.join('\n');
    expect(text).not.toMatch(/PRIVATE KEY/);
    expect(text).not.toContain(tool.read('password.txt'));
    expect(text).not.toMatch(/"d":"/);
  });

  test('then after its expiry the package is 410 EXPORT_EXPIRED (clock moved)', async () => {
    await stack.keyVault.moveClock(25 * HOUR_S);
    const late = await http.get(`tenants/${TENANT}/exports/${exportId}/package?requestedBy=alice`);
    expect([late.status, late.json().code]).toEqual([410, 'EXPORT_EXPIRED']);
  });

  test('then a BYOK tenant\'s export is 409 EXPORT_NOT_ALLOWED', async () => {
    // A BYOK tenant written directly (quicker than onboarding; topology.test.ts onboards a real one).
    const { KEYTURN_COSMOS_ENDPOINT: endpoint, KEYTURN_COSMOS_KEY: key } = stack.env;
    const client = new CosmosClient({ endpoint: endpoint!, key: key!, agent: new Agent({ ca: stack.ca }), connectionPolicy: { enableEndpointDiscovery: false } });
    const container = client.database('keyturn').container('tenants');
    const { resource: sm } = await container.item(TENANT, TENANT).read();
    const byok = { ...sm, id: 'contoso-byok-t', tenantId: 'contoso-byok-t', topology: 'byok' };
    for (const k of ['_rid', '_self', '_etag', '_attachments', '_ts']) delete byok[k];
    await container.items.create(byok);
    const res = await http.post('tenants/contoso-byok-t/exports', { requesterPublicKey: publicKeyPem, reason: 'leaving', requestedBy: 'alice' });
    expect([res.status, res.json().code]).toEqual([409, 'EXPORT_NOT_ALLOWED']);
  });

  test('then docs/tenant-keys.md gives exactly these openssl commands', () => {
    const docs = readFileSync(join(PROJECT_ROOT, 'docs', 'tenant-keys.md'), 'utf8');
    for (const c of [...OPEN_COMMANDS.password, ...OPEN_COMMANDS.key(0), OPEN_COMMANDS.digest]) expect(docs).toContain(c);
  });
});
