/**
 * Backup and restore on the real local stack. The tenant vault here is a test-only
 * emulated vault WITHOUT purge protection (started in this process, same CA), so the
 * purge case can run; Keyturn's own vault has purge protection, as in infra/. Content is
 * protected offline with jose before the backup and must open after each restore.
 */
import { dirname } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { CosmosClient } from '@azure/cosmos';
import { KeyClient } from '@azure/keyvault-keys';
import { Agent } from 'node:https';
import { createHash } from 'node:crypto';
import { startKeyVaultEmulator, type KeyVaultEmulator } from '../../../local/keyvault';
import { type TestHost, type TestStack, startStack, staticCredential } from '../../helpers/stack';
import { api } from './helpers';

const TENANT = 'acme-backup';

describe('When a tenant key is backed up and restored', () => {
  let stack: TestStack;
  let vault: KeyVaultEmulator;
  let host: TestHost;
  let http: ReturnType<typeof api>;
  let keys: KeyClient;
  let keyName: string;
  let backupId: string;
  let jwe: string;
  let stateBefore: unknown[];
  const stateOf = async () => {
    const out = [];
    for await (const p of keys.listPropertiesOfKeyVersions(keyName)) {
      const k = await keys.getKey(keyName, { version: p.version! });
      out.push({ version: p.version, enabled: p.enabled, keyOps: [...(k.keyOperations ?? [])].sort(), expiresOn: p.expiresOn?.toISOString() ?? null });
    }
    return out.sort((a, b) => String(a.version).localeCompare(String(b.version)));
  };

  beforeAll(async () => {
    stack = await startStack({ host: false });
    vault = await startKeyVaultEmulator({ vaultName: 'keyturn-purgeable', port: 0, tlsDir: dirname(stack.caFile), purgeProtection: false, log: () => undefined });
    host = await stack.startSecondHost({ KEYTURN_VAULTS: `${stack.env.KEYTURN_VAULTS},purgeable=${vault.url}`, KEYTURN_TENANT_VAULT: 'purgeable' });
    http = api(stack, host.url);
    keys = new KeyClient(vault.url, staticCredential, { disableChallengeResourceVerification: true, tlsOptions: { ca: stack.ca } });
  });
  afterAll(async () => {
    await stack?.stop();
    await vault?.close();
  });

  const blobs = () => BlobServiceClient.fromConnectionString(stack.env.KEYTURN_STORAGE_CONNECTION!);
  const restore = (id = backupId) => http.post(`tenants/${TENANT}/restore`, { backupId: id });

  test('then a backup of every version lands in Blob storage with its SHA-256 in the metadata and the record', async () => {
    expect((await http.post('tenants', { tenantId: TENANT, topology: 'service-managed' })).status).toBe(201);
    jwe = await http.protect(TENANT, 'protected before the backup');
    expect((await http.post(`tenants/${TENANT}/rekey`, { reason: 'two versions' })).status).toBe(200);
    const res = await http.post(`tenants/${TENANT}/backups`, {});
    expect(res.status).toBe(201);
    const { backup } = res.json();
    backupId = backup.id;
    expect(backup.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(backup.blob).toMatch(new RegExp(`^tenant-backups/${TENANT}/\\d{8}T\\d{9}Z$`));
    const tenant = (await http.get(`tenants/${TENANT}`)).json().tenant;
    expect(backup.versions).toEqual(tenant.versions.map((v: { kid: string }) => v.kid));
    keyName = /\/keys\/([^/]+)\//.exec(tenant.activeKid)![1]!;
    stateBefore = await stateOf();

    const blob = blobs().getContainerClient('tenant-backups').getBlockBlobClient(backup.blob.slice('tenant-backups/'.length));
    const bytes = await blob.downloadToBuffer();
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(backup.sha256);
    expect((await blob.getProperties()).metadata?.sha256).toBe(backup.sha256);
    expect((await http.get(`tenants/${TENANT}/backups`)).json().backups.map((b: { id: string }) => b.id)).toEqual([backupId]);
  });

  test('then a restore while the key is present is 409 KEY_PRESENT; an unknown backup 404, a malformed id 400', async () => {
    const res = await restore();
    expect([res.status, res.json().code]).toEqual([409, 'KEY_PRESENT']);
    expect((await restore('backup-20260101T000000000Z-00000000')).status).toBe(404);
    expect([(await restore('nope')).status, (await restore('nope')).json().field]).toEqual([400, 'backupId']);
  });

  test('then a soft-deleted key is recovered and old content opens again', async () => {
    await (await keys.beginDeleteKey(keyName)).pollUntilDone();
    expect(await http.unprotect(TENANT, jwe)).not.toBe('protected before the backup');
    const res = await restore();
    expect(res.status).toBe(200);
    expect(res.json().tenant.tenantId).toBe(TENANT);
    expect(await http.unprotect(TENANT, jwe)).toBe('protected before the backup');
  });

  test('then a corrupted backup blob is refused by its checksum and nothing is restored', async () => {
    await (await keys.beginDeleteKey(keyName)).pollUntilDone();
    await keys.purgeDeletedKey(keyName);
    const container = blobs().getContainerClient('tenant-backups');
    const name = `${TENANT}/${backupId.split('-')[1]}`;
    const original = await container.getBlockBlobClient(name).downloadToBuffer();
    const metadata = (await container.getBlockBlobClient(name).getProperties()).metadata;
    const corrupted = Buffer.from(original);
    const at = corrupted.length >> 1;
    corrupted[at] = corrupted[at]! ^ 0xff;
    await container.getBlockBlobClient(name).upload(corrupted, corrupted.length, { metadata });
    const res = await restore();
    expect([res.status, res.json().code]).toEqual([409, 'BACKUP_CHECKSUM_MISMATCH']);
    await expect(keys.getKey(keyName)).rejects.toMatchObject({ statusCode: 404 });
    await container.getBlockBlobClient(name).upload(original, original.length, { metadata });
  });

  test('then a purged key is restored from the blob, every version in its earlier state, and old content opens', async () => {
    const res = await restore();
    expect(res.status).toBe(200);
    const after = await stateOf();
    expect(after).toHaveLength(2);
    expect(after).toEqual(stateBefore);
    expect(await http.unprotect(TENANT, jwe)).toBe('protected before the backup');
    expect(await http.unprotect(TENANT, await http.protect(TENANT, 'new content'))).toBe('new content');
  });

  test('then a BYOK tenant whose customer granted no backup right is 409 BACKUP_NOT_PERMITTED naming the az command', async () => {
    // A BYOK tenant written directly (quicker than onboarding; topology.test.ts onboards a real one).
    const byok = stack.vaults['contoso-byok']!;
    const key = await byok.keyClient('contoso-admin').createRsaKey('contoso-tenant-key', { keySize: 3072 });
    const client = new CosmosClient({ endpoint: stack.env.KEYTURN_COSMOS_ENDPOINT!, key: stack.env.KEYTURN_COSMOS_KEY!, agent: new Agent({ ca: stack.ca }), connectionPolicy: { enableEndpointDiscovery: false } });
    const container = client.database('keyturn').container('tenants');
    const { resource: sm } = await container.item(TENANT, TENANT).read();
    const v = { ...sm.versions[0], vaultUrl: byok.url, name: key.name, version: key.properties.version, kid: `${byok.url}/keys/${key.name}/${key.properties.version}` };
    const doc = { ...sm, id: 'contoso-b', tenantId: 'contoso-b', topology: 'byok', versions: [v], activeKid: v.kid };
    for (const k of ['_rid', '_self', '_etag', '_attachments', '_ts']) delete doc[k];
    await container.items.create(doc);
    const res = await http.post('tenants/contoso-b/backups', {});
    expect([res.status, res.json().code]).toEqual([409, 'BACKUP_NOT_PERMITTED']);
    expect(res.json().detail ?? res.json().title).toContain('az keyvault key backup --vault-name contoso-byok --name contoso-tenant-key --file');
  });
});
