/**
 * A key set's life on the real local stack: KEK rotation re-wraps data keys only
 * (ciphertexts byte-identical); an export approved by a second identity; the KEK deleted
 * (a purge is refused: purge protection) → the set is `unavailable` only after the window (clock move); import
 * through the two openssl commands of docs/key-sets.md → every value reads back; abandon
 * → old-generation ciphertexts gone, items `needs-reentry`, events published, re-PUT works.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from '../../helpers/host';
import { PROJECT_ROOT, type TestStack, call, startStack } from '../../helpers/stack';
import { type Subscriber, startSubscriber } from '../../helpers/subscriber';
import { cosmosOf, inParallel, keySetApi } from './helpers';

const SET = 'partner-creds';
const ids = Array.from({ length: 40 }, (_, i) => `cred-${String(i).padStart(2, '0')}`);
const valueOf = (id: string) => `token for ${id}`;

describe('When a key set goes through KEK rotation, loss, import and abandon', () => {
  let stack: TestStack;
  let api: ReturnType<typeof keySetApi>;
  let subscriber: Subscriber;
  let dir: string;
  let exportFile: any;

  beforeAll(async () => {
    // A short data-key TTL, so a lost KEK shows at once rather than after 300 s of cached keys.
    stack = await startStack({ env: { KEYTURN_KEYSET_DATA_KEY_TTL_SECONDS: '1', AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:01' } });
    api = keySetApi(stack.host!.url);
    dir = mkdtempSync(join(tmpdir(), 'keyturn-keyset-'));
    subscriber = await startSubscriber();
    const sub = await call('POST', `${stack.eventGrid.url}/management/subscriptions`, {
      ca: stack.ca,
      body: { name: 'reentry', topic: '*', endpoint: subscriber.url, includedEventTypes: ['Keyturn.CredentialReentryRequired'] },
    });
    expect(sub.status).toBeLessThan(300);
    expect((await api.put(`keysets/${SET}`, {})).status).toBe(201);
    await inParallel(ids.slice(0, 30), 8, async (id) => expect((await api.put(`keysets/${SET}/items/${id}`, { value: valueOf(id), owner: `owner-${id.slice(-1)}` })).status).toBe(201));
    expect((await api.post(`keysets/${SET}/keys`)).status).toBe(201);
    await inParallel(ids.slice(30), 8, async (id) => expect((await api.put(`keysets/${SET}/items/${id}`, { value: valueOf(id), owner: `owner-${id.slice(-1)}` })).status).toBe(201));
  }, 120_000);
  afterAll(async () => {
    await subscriber?.close();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ciphertexts = async () => Object.fromEntries((await cosmosOf(stack).itemsOf(SET)).map((d) => [d.id, d.ciphertext]));

  test('then a rewrap moves every data key to the KEK\'s new version and leaves every ciphertext byte-identical', async () => {
    const before = await ciphertexts();
    const old = (await api.get(`keysets/${SET}`)).json().keySet;
    const res = await api.post(`keysets/${SET}/rewrap`);
    expect(res.status).toBe(200);
    const { keySet, rewrapped, kekVersion } = res.json();
    expect(rewrapped).toBe(2);
    expect(kekVersion).not.toBe(old.kek.version);
    expect(keySet.kek.version).toBe(kekVersion);
    expect(keySet.keys.map((k: any) => k.kekVersion)).toEqual([kekVersion, kekVersion]);
    const versions = [];
    for await (const v of stack.keyVault.keyClient().listPropertiesOfKeyVersions(old.kek.name)) versions.push(v.version);
    expect(versions).toHaveLength(2);
    expect(await ciphertexts()).toEqual(before);
    expect((await api.get(`keysets/${SET}/items/cred-03`)).json().value).toBe(valueOf('cred-03'));
    expect((await api.get(`keysets/${SET}/items/cred-33`)).json().value).toBe(valueOf('cred-33'));
  });

  test('then KeyNearExpiry of the KEK (through the event intake) re-wraps again; a redelivery does nothing', async () => {
    const before = await ciphertexts();
    const { kek } = (await api.get(`keysets/${SET}`)).json().keySet;
    const event = {
      id: `kne-${kek.version}`,
      topic: stack.keyVault.topic,
      subject: kek.name,
      eventType: 'Microsoft.KeyVault.KeyNearExpiry',
      eventTime: new Date().toISOString(),
      data: { Id: `${stack.keyVault.url}/keys/${kek.name}/${kek.version}`, VaultName: stack.keyVault.vaultName, ObjectType: 'Key', ObjectName: kek.name, Version: kek.version, NBF: null, EXP: String(Math.floor(Date.now() / 1000)) },
      dataVersion: '1',
      metadataVersion: '1',
    };
    const deliver = () => call('POST', `${stack.host!.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, { body: [event], headers: { 'aeg-event-type': 'Notification' } });
    expect((await deliver()).status).toBeLessThan(300);
    const after = (await api.get(`keysets/${SET}`)).json().keySet;
    expect(after.kek.version).not.toBe(kek.version);
    expect(after.keys.map((k: any) => k.kekVersion)).toEqual([after.kek.version, after.kek.version]);
    expect((await deliver()).status).toBeLessThan(300);
    expect((await api.get(`keysets/${SET}`)).json().keySet.kek.version).toBe(after.kek.version);
    expect(await ciphertexts()).toEqual(before);
  });

  test('then an export needs a second identity naming the recipient key, and writes the file to Blob storage', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(join(dir, 'recipient.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const sha = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    const weak = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' });
    expect((await api.post(`keysets/${SET}/exports`, { recipientPublicKey: weak, reason: 'backup', requestedBy: 'alice' })).json().field).toBe('recipientPublicKey');
    expect((await api.post(`keysets/${SET}/exports`, { recipientPublicKey: pem, reason: 'backup' })).json().field).toBe('requestedBy');
    const requested = await api.post(`keysets/${SET}/exports`, { recipientPublicKey: pem, reason: 'quarterly backup', requestedBy: 'alice' });
    expect(requested.status).toBe(201);
    const { exportId, state, recipientSha256 } = requested.json().export;
    expect([state, recipientSha256]).toEqual(['awaiting-approval', sha]);
    const approve = (body: unknown) => api.post(`keysets/${SET}/exports/${exportId}/approve`, body);
    expect((await approve({ publicKeySha256: sha, approvedBy: 'alice' })).json().code).toBe('APPROVER_IS_REQUESTER');
    expect((await approve({ publicKeySha256: 'ab'.repeat(32), approvedBy: 'bob' })).json().code).toBe('APPROVAL_DIGEST_MISMATCH');
    const approved = await approve({ publicKeySha256: sha, approvedBy: 'bob' });
    expect(approved.status).toBe(200);
    const done = approved.json().export;
    expect(done).toMatchObject({ state: 'completed', approvedBy: 'bob', blobName: expect.stringMatching(new RegExp(`^keyset-exports/${SET}/`)) });
    expect((await approve({ publicKeySha256: sha, approvedBy: 'carol' })).json().code).toBe('EXPORT_STATE');

    const blobs = BlobServiceClient.fromConnectionString(stack.env.KEYTURN_STORAGE_CONNECTION!);
    const [container, ...name] = done.blobName.split('/');
    const content = await blobs.getContainerClient(container).getBlobClient(name.join('/')).downloadToBuffer();
    expect(createHash('sha256').update(content).digest('hex')).toBe(done.checksum);
    exportFile = JSON.parse(content.toString('utf8'));
    const view = (await api.get(`keysets/${SET}`)).json().keySet;
    expect(exportFile).toMatchObject({ format: 'keyturn-keyset-export-v1', setId: SET, setUid: view.uid });
    expect(exportFile.keys.map((k: any) => k.keyId)).toEqual(['k1', 'k2']);
    expect(exportFile.manifest.map((m: any) => m.keyId)).toEqual(['k1', 'k2']);
    expect(view.exportStale).toBe(false);
  });

  test('then with its KEK deleted (purge refused: purge protection) the set turns unavailable only after the window, and an openssl import brings it back', async () => {
    const { kek } = (await api.get(`keysets/${SET}`)).json().keySet;
    const admin = stack.keyVault.keyClient();
    await (await admin.beginDeleteKey(kek.name)).pollUntilDone();
    // Both local vaults have purge protection, as production vaults should: the purge is refused, so the KEK
    // stays soft-deleted (for Keyturn as gone as purged: no unwrap answers).
    await expect(admin.purgeDeletedKey(kek.name)).rejects.toThrow(/purge protection/);
    await new Promise((r) => setTimeout(r, 1500)); // the 1 s data-key TTL
    const first = await api.get(`keysets/${SET}/items/cred-01`);
    expect(first.status).toBe(503); // one failure is not a loss
    await stack.keyVault.moveClock(11 * 60);
    const lost = await api.get(`keysets/${SET}/items/cred-01`);
    expect([lost.status, lost.json().code, lost.json().waysOut]).toEqual([409, 'KEYSET_UNAVAILABLE', ['import', 'abandon']]);
    expect((await api.get(`keysets/${SET}`)).json().keySet.state).toBe('unavailable');

    // GET …/kek is read only: with the KEK gone it answers what to do, and changes nothing in Key Vault or Cosmos DB.
    const vaultKeys = async () => {
      const names: string[] = [];
      for await (const p of admin.listPropertiesOfKeys()) names.push(`${p.name}/${p.version ?? ''}/${p.updatedOn?.toISOString()}`);
      return names.sort();
    };
    const setDocs = async () => (await cosmosOf(stack).sets.items.query({ query: 'SELECT c.id, c._etag FROM c WHERE c.setId = @s', parameters: [{ name: '@s', value: SET }] }).fetchAll()).resources;
    const [keysBefore, docsBefore] = [await vaultKeys(), await setDocs()];
    for (let i = 0; i < 3; i++) {
      const refused = await api.get(`keysets/${SET}/kek`);
      // Keyturn also holds Key Vault Reader on its vault (deleted checkpoints, issue 14): it sees the KEK soft-deleted, so recoverable.
      expect([refused.status, refused.json().code]).toEqual([409, 'KEK_UNAVAILABLE']);
      expect(refused.json()).toMatchObject({ setId: SET, kekState: 'deleted', recoverable: true, waysOut: ['recover', 'replace', 'import', 'abandon'] });
      expect(refused.json().detail).toContain(`POST /api/keysets/${SET}/kek/replace`);
    }
    expect(await vaultKeys()).toEqual(keysBefore);
    expect(await setDocs()).toEqual(docsBefore);
    // The repair is explicit: a replacement KEK; the data keys keep their wrapping under the old one until imported.
    const replaced = await api.post(`keysets/${SET}/kek/replace`);
    expect(replaced.status).toBe(200);
    expect(replaced.json()).toMatchObject({ replacedKid: `${kek.vaultUrl}/keys/${kek.name}/${kek.version}`, keySet: { replacedKeks: [{ name: kek.name, version: kek.version }] } });
    expect(replaced.json().keySet.keys.map((k: any) => k.kekVersion)).toEqual([kek.version, kek.version]);
    expect((await api.post(`keysets/${SET}/kek/replace`)).json().code).toBe('KEK_PRESENT');
    const published = (await api.get(`keysets/${SET}/kek`)).json();
    expect(published.jwk).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256' });
    expect(published.kid).not.toContain(`/keys/${kek.name}/`); // a replacement for the purged KEK
    expect(published.kid).toBe(replaced.json().kid);
    writeFileSync(join(dir, 'kek.pem'), published.pem);
    const keys = exportFile.keys.map((k: any) => {
      writeFileSync(join(dir, `${k.keyId}.enc`), Buffer.from(k.encryptedKey, 'base64'));
      // The two commands of docs/key-sets.md.
      execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', 'recipient.pem', '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-in', `${k.keyId}.enc`, '-out', `${k.keyId}.key`], { cwd: dir });
      execFileSync('openssl', ['pkeyutl', '-encrypt', '-pubin', '-inkey', 'kek.pem', '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-in', `${k.keyId}.key`, '-out', `${k.keyId}.wrapped`], { cwd: dir });
      return { keyId: k.keyId, wrapped: readFileSync(join(dir, `${k.keyId}.wrapped`)).toString('base64') };
    });
    expect((await api.post(`keysets/${SET}/import`, { keys: [{ keyId: 'k7', wrapped: keys[0].wrapped }] })).json().code).toBe('IMPORT_INVALID');
    // k1's key offered as k2: it unwraps, but opens none of k2's items.
    expect((await api.post(`keysets/${SET}/import`, { keys: [{ keyId: 'k2', wrapped: keys[0].wrapped }] })).json()).toMatchObject({ code: 'IMPORT_INVALID', field: 'keys.0.wrapped' });
    const imported = await api.post(`keysets/${SET}/import`, { keys });
    expect(imported.status).toBe(200);
    expect(imported.json()).toMatchObject({ imported: 2, keySet: { state: 'available', exportStale: true } });
    const values = await inParallel(ids, 8, async (id) => (await api.get(`keysets/${SET}/items/${id}`)).json().value);
    expect(values).toEqual(ids.map(valueOf));
  });

  test('then abandon deletes every old-generation ciphertext, marks items needs-reentry and tells each owner; a re-PUT makes it whole', async () => {
    expect((await api.post(`keysets/${SET}/abandon`, { confirm: 'other', reason: 'drill' })).json().field).toBe('confirm');
    const res = await api.post(`keysets/${SET}/abandon`, { confirm: SET, reason: 'drill', batchSize: 7 });
    expect(res.status).toBe(202);
    const { jobId } = res.json();
    expect((await api.put(`keysets/${SET}/items/after-abandon`, { value: 'kept', owner: 'o' })).status).toBe(201);
    const job = await pollUntil(async () => {
      const j = (await api.get(`jobs/${jobId}`)).json().job;
      return j.state === 'completed' ? j : undefined;
    }, 60_000, 200);
    expect(job).toMatchObject({ kind: 'keyset-abandon', processed: 40, total: 40 });
    const docs = await cosmosOf(stack).itemsOf(SET);
    expect(docs.filter((d) => d.ciphertext && d.generation < 1)).toEqual([]);
    const gone = await api.get(`keysets/${SET}/items/cred-05`);
    expect([gone.status, gone.json().code]).toEqual([409, 'NEEDS_REENTRY']);
    expect((await api.get(`keysets/${SET}/items/after-abandon`)).json().value).toBe('kept');
    const view = (await api.get(`keysets/${SET}`)).json().keySet;
    expect(view).toMatchObject({ generation: 1, primaryKeyId: 'k3', state: 'available' });
    expect(view.keys.filter((k: any) => k.state === 'retired').map((k: any) => k.keyId)).toEqual(['k1', 'k2']);
    // One event per owner (owner-0 … owner-9, four items each), listing its item ids; none for the item written after.
    const reentry = () => [...new Map(subscriber.receivedEvents<any>().filter((e) => e.eventType === 'Keyturn.CredentialReentryRequired').map((e) => [e.id, e])).values()];
    const events = await pollUntil(() => (new Set(reentry().flatMap((e) => e.data.itemIds)).size >= 40 ? reentry() : undefined), 30_000, 200);
    expect(events).toHaveLength(10);
    expect(events.map((e) => e.data.owner).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `owner-${i}`));
    expect(events.flatMap((e) => e.data.itemIds).sort()).toEqual(ids);
    expect(events.find((e) => e.data.owner === 'owner-5')).toMatchObject({
      subject: `/keysets/${SET}/owners/owner-5`,
      data: { setId: SET, owner: 'owner-5', generation: 1, jobId, reason: 'drill', itemIds: ['cred-05', 'cred-15', 'cred-25', 'cred-35'], itemCount: 4 },
    });
    // A redelivered (stale) message of the finished job publishes nothing more.
    const received = () => subscriber.receivedEvents<any>().filter((e) => e.eventType === 'Keyturn.CredentialReentryRequired').length;
    const before = received();
    const { QueueServiceClient } = await import('@azure/storage-queue');
    const q = QueueServiceClient.fromConnectionString(stack.env.KEYTURN_QUEUE!).getQueueClient(stack.env.KEYTURN_BATCH_QUEUE ?? 'keyturn-batch-jobs');
    await q.sendMessage(Buffer.from(JSON.stringify({ jobId, batch: job.batches - 1, cursor: 'o::' })).toString('base64'));
    await pollUntil(() => (stack.allLogs().some((l) => l.includes('Batch message skipped') && l.includes(jobId)) ? true : undefined), 20_000, 200);
    await new Promise((r) => setTimeout(r, 500));
    expect([received(), reentry().length]).toEqual([before, 10]);
    expect((await api.put(`keysets/${SET}/items/cred-05`, { value: 'again', owner: 'owner-5' })).status).toBe(200);
    expect((await api.get(`keysets/${SET}/items/cred-05`)).json()).toMatchObject({ value: 'again', keyId: 'k3' });
    expect(JSON.stringify(docs)).not.toContain('token for');
  });

  test('then `npm run demo:key-set` runs as a new user would (a smaller count)', async () => {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(PROJECT_ROOT, 'dist', 'local', 'demoKeySet.js')],
        {
          cwd: PROJECT_ROOT,
          env: { ...process.env, KEYTURN_DEMO_APP_URL: stack.host!.url, KEYTURN_DEMO_EVENTGRID_URL: stack.eventGrid.url, KEYTURN_DEMO_CA_FILE: stack.caFile, KEYTURN_DEMO_ITEMS: '60' },
          timeout: 120_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/2\. 60 credentials stored/);
    expect(out.stdout).toMatch(/re-encrypting \[#{30}\] 60\/60/);
    expect(out.stdout).toMatch(/5\. export requested by alice, approved by bob: keyset-exports\/demo-/);
    expect(out.stdout).toMatch(/6\. abandoned: 5 Keyturn\.CredentialReentryRequired events \(one per owner\) for 60 items:/);
  }, 150_000);
});
