/**
 * GET /api/credentials pages on the local stack: the real SecretClient's paged listing
 * (the emulator pages by 25, as Key Vault does) and one Cosmos DB query per page.
 */
import { randomBytes } from 'node:crypto';
import { type TestStack, startStack } from '../../helpers/stack';
import { encodeCursor } from '../../../shared/services/renewal/listingCursor';
import { call, seedSymmetric } from './helpers';

interface Page {
  credentials: { vault: string; name: string; currentVersion: string; expiresOn: string | null; status: string }[];
  continuationToken?: string;
}

describe('GET /api/credentials on the local stack', () => {
  let stack: TestStack;
  let host: string;
  const managed = new Map<string, string>(); // name → version

  beforeAll(async () => {
    stack = await startStack({ env: { KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *' } });
    host = stack.host!.url;
    const client = stack.keyVault.secretClient();
    // 40 managed (long-lived, so nothing renews) among 30 unmanaged, names interleaved.
    for (let i = 0; i < 70; i++) {
      const name = `list-${String(i).padStart(3, '0')}`;
      if (i % 7 < 4) managed.set(name, (await seedSymmetric(stack, name, 300)).version!);
      else await client.setSecret(name, randomBytes(8).toString('hex'), { tags: { owner: 'not-keyturn' } });
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const page = async (query: string) => {
    const res = await call('GET', `${host}/api/credentials${query}`);
    return { status: res.status, body: res.json<Page & { title?: string; detail?: string }>() };
  };

  test('a walk of small pages returns each managed secret exactly once, with its current version', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await page(`?top=9${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`);
      expect(status).toBe(200);
      expect(body.credentials.length).toBeLessThanOrEqual(9);
      for (const c of body.credentials.filter((x) => x.name.startsWith('list-'))) {
        seen.push(c.name);
        expect(c).toMatchObject({ vault: 'local', currentVersion: managed.get(c.name), status: 'managed', expiresOn: expect.any(String) });
      }
      token = body.continuationToken;
      pages++;
    } while (token && pages < 50);
    expect(token).toBeUndefined();
    expect(pages).toBeGreaterThanOrEqual(5);
    expect(seen).toEqual([...managed.keys()].sort());
  });

  test('the default page holds them all here; top=500 is accepted', async () => {
    const { status, body } = await page('');
    expect(status).toBe(200);
    expect(body.credentials.filter((c) => c.name.startsWith('list-'))).toHaveLength(managed.size);
    expect(body.continuationToken).toBeUndefined();
    expect((await page('?top=500')).status).toBe(200);
  });

  test.each(['0', '501', '-1', '1.5', 'abc', '', '1e2'])('top=%s is a 400 naming top', async (top) => {
    const { status, body } = await page(`?top=${encodeURIComponent(top)}`);
    expect(status).toBe(400);
    expect(JSON.stringify(body)).toContain('top');
  });

  test('a changed token, or one pointing Key Vault elsewhere, is a 400 naming continuationToken', async () => {
    const first = await page('?top=3');
    const token = first.body.continuationToken!;
    expect(token).toBeDefined();
    const changed = token.slice(0, 5) + (token[5] === 'A' ? 'B' : 'A') + token.slice(6);
    const elsewhere = encodeCursor({ vault: 'local', kv: 'https://127.0.0.1:1/secrets?api-version=7.5&$skiptoken=MA', skip: 0 });
    const otherPath = encodeCursor({ vault: 'local', kv: `${stack.keyVault.url}/keys?$skiptoken=MA`, skip: 0 });
    for (const bad of [changed, 'x', elsewhere, otherPath, encodeCursor({ vault: 'nowhere', skip: 0 })]) {
      const { status, body } = await page(`?top=3&continuationToken=${encodeURIComponent(bad)}`);
      expect(status).toBe(400);
      expect(JSON.stringify(body)).toContain('continuationToken');
    }
  });
});
