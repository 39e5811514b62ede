/**
 * Credential renewal on the local stack: the Key Vault emulator (its clock moved),
 * the local Event Grid delivering the vault's events to the app in the local functions
 * host, Cosmos and Azurite. Microsoft Graph cannot run here: the entra-app-password
 * provider talks to a local Graph stub (127.0.0.1) that speaks Graph's wire format
 * for addPassword, removePassword and GET application passwordCredentials.
 */
import { randomBytes } from 'node:crypto';
import { eventually } from '../../helpers/process';
import { type TestStack, startStack } from '../../helpers/stack';
import { type GraphStub, startGraphStub } from '../../unit/renewal/graphStub';
import {
  APP,
  DAY_S,
  assertNoValueLeaked,
  call,
  cosmos,
  credentials,
  deliver,
  keyVaultEvent,
  seedEntra,
  seedSymmetric,
  versions,
  waitForState,
} from './helpers';

describe('When a managed credential nears expiry on the local stack', () => {
  let stack: TestStack;
  let graph: GraphStub;
  let host: string;

  beforeAll(async () => {
    graph = await startGraphStub();
    stack = await startStack({ env: { KEYTURN_GRAPH_ENDPOINT: graph.url, KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *' } });
    host = stack.host!.url;
  });
  afterAll(async () => {
    await stack?.stop();
    await graph?.stop();
  });

  test('then a symmetric key is renewed: new version current, old previous and enabled, retired after grace', async () => {
    const seeded = await seedSymmetric(stack, 'db-key', 10);
    const row = await waitForState(host, 'db-key', 'grace');
    const client = stack.keyVault.secretClient();
    const [old, current] = await versions(client, 'db-key');
    expect(row.currentVersion).toBe(current!.version);
    expect(old).toMatchObject({ version: seeded.version, enabled: true, tags: expect.objectContaining({ 'keyturn-stage': 'previous' }) });
    expect(current).toMatchObject({ enabled: true, tags: expect.objectContaining({ 'keyturn-stage': 'current', 'keyturn-provider': 'symmetric' }) });
    const value = (await client.getSecret('db-key')).value!;
    expect(Buffer.from(value, 'base64')).toHaveLength(32);
    const pending = await versions(client, 'db-key--pending');
    expect(pending.every((p) => !p.enabled)).toBe(true);

    await stack.keyVault.moveClock(8 * DAY_S);
    await waitForState(host, 'db-key', 'completed');
    const [retired] = await versions(client, 'db-key');
    expect(retired).toMatchObject({ enabled: false, tags: expect.objectContaining({ 'keyturn-stage': 'retired' }) });
    expect((await client.getSecret('db-key')).value).toBe(value);
  });

  test('then an Entra app password is renewed and the old one removed at Graph after grace', async () => {
    const { old } = await seedEntra(stack, graph, 'app-secret', 10);
    await waitForState(host, 'app-secret', 'grace');
    const client = stack.keyVault.secretClient();
    const current = await client.getSecret('app-secret');
    const newKeyId = current.properties.tags?.['keyturn-credential-id'];
    expect(graph.passwords(APP).map((p) => p.keyId).sort()).toEqual([old.keyId, newKeyId].sort());
    expect(graph.passwords(APP).find((p) => p.keyId === newKeyId)?.secretText).toBe(current.value);

    await stack.keyVault.moveClock(8 * DAY_S);
    await waitForState(host, 'app-secret', 'completed');
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([newKeyId]);
    expect(graph.calls.some((c) => c.path.endsWith('/removePassword'))).toBe(true);
  });

  test('then the same event 5× out of order, to two hosts at once, makes exactly one new version', async () => {
    const seeded = await seedSymmetric(stack, 'api-key', 200);
    const second = await stack.startSecondHost();
    try {
      const events = [
        keyVaultEvent(stack, 'api-key', seeded.version!, 'SecretExpired', 'x1'),
        keyVaultEvent(stack, 'api-key', seeded.version!, 'SecretNearExpiry', 'n1'),
        keyVaultEvent(stack, 'api-key', seeded.version!, 'SecretNearExpiry', 'n1'),
        keyVaultEvent(stack, 'API-KEY', seeded.version!.toUpperCase(), 'SecretNearExpiry', 'n2'),
        keyVaultEvent(stack, 'api-key', seeded.version!, 'SecretExpired', 'x2'),
      ];
      const results = await Promise.all(events.map((e, i) => deliver(i % 2 ? host : second.url, [e])));
      expect(results.map((r) => r.status).every((s) => s >= 200 && s < 300)).toBe(true);
      await waitForState(host, 'api-key', 'grace');
      expect(await versions(stack.keyVault.secretClient(), 'api-key')).toHaveLength(2);
      const rotations = (await cosmos(stack).rotations()).filter((r) => r.credentialId === 'local:api-key');
      expect(rotations).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });

  test('then malformed, oversized and spoofed events are acknowledged, recorded and change nothing', async () => {
    const seeded = await seedSymmetric(stack, 'quiet-key', 200);
    const good = keyVaultEvent(stack, 'quiet-key', seeded.version!);
    const spoofed = { ...good, id: 'spoofed-1', topic: stack.keyVault.topic.replace(/vaults\/.*/, 'vaults/evil-vault'), data: { ...good.data, VaultName: 'evil-vault' } };
    const malformed = { ...good, id: 'malformed-1', data: { ...good.data, ObjectName: '../../etc' } };
    const oversized = { ...good, id: 'oversized-1', data: { ...good.data, Padding: 'x'.repeat(70_000) } };
    for (const e of [spoofed, malformed, oversized]) expect((await deliver(host, [e])).status).toBe(202);
    const letters = await eventually(async () => {
      const all = await cosmos(stack).deadLetters();
      return all.length >= 3 ? all : undefined;
    }, 'three dead letters');
    expect(letters.map((l) => l.reason).sort()).toEqual(['malformed', 'oversized', 'spoofed']);
    // Each keeps a projection (envelope, data key names, hash and size), never data values.
    const stored = JSON.stringify(letters);
    for (const value of ['../../etc', 'x'.repeat(64), good.data.Id]) expect(stored.includes(value)).toBe(false);
    expect(letters.find((l) => l.reason === 'malformed')).toMatchObject({
      source: good.topic,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      bytes: Buffer.byteLength(JSON.stringify(malformed)),
      event: { id: 'malformed-1', eventType: good.eventType, subject: 'quiet-key', dataKeys: ['EXP', 'Id', 'NBF', 'ObjectName', 'ObjectType', 'VaultName', 'Version'] },
    });
    expect(await versions(stack.keyVault.secretClient(), 'quiet-key')).toHaveLength(1);
    expect((await credentials(host)).find((c) => c.name === 'quiet-key')?.rotation).toBeNull();
  });

  test('then bad HTTP input gets a 4xx naming the field, never a 500', async () => {
    const cases: [string, string, unknown, number, string?][] = [
      ['POST', '/api/credentials/local/bad_name!/renew', undefined, 400, 'route.name'],
      ['POST', '/api/credentials/local/db-key/renew', '{not json', 400, '(body)'],
      ['POST', '/api/credentials/local/db-key/renew', { force: true }, 400],
      ['POST', '/api/credentials/nowhere/db-key/renew', undefined, 404],
      ['POST', '/api/credentials/local/missing-secret/renew', undefined, 404],
      ['GET', '/api/rotations/not-an-id', undefined, 400, 'route.id'],
      ['GET', '/api/rotations/local:db-key:ffff:1', undefined, 404],
    ];
    for (const [method, path, body, status, field] of cases) {
      const res = await call(method, `${host}${path}`, { body });
      expect([path, res.status]).toEqual([path, status]);
      if (field) expect(res.json().field).toBe(field);
    }
    const plain = await stack.keyVault.secretClient().setSecret('not-managed', randomBytes(8).toString('hex'));
    void plain;
    expect((await call('POST', `${host}/api/credentials/local/not-managed/renew`)).status).toBe(409);
  });

  test('then renew over HTTP answers 202 with the rotation id and its location', async () => {
    await seedSymmetric(stack, 'manual-key', 300);
    const res = await call('POST', `${host}/api/credentials/local/manual-key/renew`);
    expect(res.status).toBe(202);
    const { rotationId } = res.json<{ rotationId: string }>();
    expect(res.headers.location).toBe(`/api/rotations/${rotationId}`);
    const got = await call('GET', `${host}/api/rotations/${rotationId}`);
    expect(got.status).toBe(200);
    expect(got.json()).toMatchObject({ id: rotationId, attempt: 1 });
    // Ids are case-insensitive: the route accepts any casing.
    const upper = await call('GET', `${host}/api/rotations/${rotationId.toUpperCase()}`);
    expect([upper.status, upper.json().id]).toEqual([200, rotationId]);
  });

  test('then a secret that could never rotate is shown invalid and nothing is created for it', async () => {
    const tags = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`team-tag-${i}`, 'x']));
    await seedSymmetric(stack, 'crowded-key', 5, tags);
    const long = 'l'.repeat(119);
    await seedSymmetric(stack, long, 5);
    for (const name of ['crowded-key', long]) {
      const res = await call('POST', `${host}/api/credentials/local/${name}/renew`);
      expect([name, res.status]).toEqual([name, 409]);
    }
    const rows = (await credentials(host)) as (Awaited<ReturnType<typeof credentials>>[number] & { status: string; problem?: string })[];
    expect(rows.find((r) => r.name === 'crowded-key')).toMatchObject({ status: 'invalid', problem: expect.stringMatching(/^\(tags\): /), rotation: null });
    expect(rows.find((r) => r.name === long)).toMatchObject({ status: 'invalid', problem: expect.stringMatching(/^\(name\): /), rotation: null });
    const client = stack.keyVault.secretClient();
    expect(await versions(client, 'crowded-key--pending')).toHaveLength(0);
    expect(await versions(client, 'crowded-key')).toHaveLength(1);
  });

  test('then a rotation that fails before promotion removes its password (retrying a failed clean-up) and stays failed', async () => {
    graph.hideNewPasswords = true; // verify never sees the new password
    graph.failNext(1, 503, 'removePassword'); // and the first clean-up fails
    try {
      const { old } = await seedEntra(stack, graph, 'doomed-secret', 10);
      const failed = await eventually(
        async () => {
          const r = (await cosmos(stack).rotations()).find((x) => x.credentialId === 'local:doomed-secret');
          if (r?.status === 'failed' && r.cleanup?.state === 'done') return r;
          await stack.keyVault.moveClock(600);
          return undefined;
        },
        'the rotation to fail and be cleaned up',
        180_000,
        1000,
      );
      expect(failed.cleanup.tries).toBe(2); // the resume timer found it again through the due query
      expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([old.keyId]);
      const pending = await versions(stack.keyVault.secretClient(), 'doomed-secret--pending');
      expect(pending.map((p) => p.enabled)).toEqual([false]);
      const view = (await call('GET', `${host}/api/rotations/${failed.id}`)).json();
      expect(view).toMatchObject({ status: 'failed', cleanup: { state: 'done' }, lastError: { step: 'verify', name: 'KeyturnError', code: 'VERIFY_NOT_REPLICATED', statusCode: null } });
      expect(Object.keys(view.lastError).sort()).toEqual(['at', 'code', 'kind', 'message', 'name', 'statusCode', 'step']);
    } finally {
      graph.hideNewPasswords = false;
    }
  });

  test('then no generated or seeded value appears in any log line, Cosmos document or HTTP body', async () => {
    await assertNoValueLeaked(stack, graph);
  });
});
