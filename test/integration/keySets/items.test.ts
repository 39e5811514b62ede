/**
 * Key sets on the real local stack: sets and items under envelope encryption (AES-256-GCM
 * data keys wrapped by a KEK in the Key Vault emulator), keys of a set, and a ciphertext
 * moved in Cosmos DB failing with a code.
 */
import { type TestStack, startStack } from '../../helpers/stack';
import { cosmosOf, inParallel, keySetApi } from './helpers';

describe('When a service stores credentials in a key set', () => {
  let stack: TestStack;
  let api: ReturnType<typeof keySetApi>;
  const SET = 'connectors';

  beforeAll(async () => {
    stack = await startStack();
    api = keySetApi(stack.host!.url);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('then PUT creates the set with a Keyturn-owned KEK (RSA per the key policy, no exp, wrap/unwrap only) and one primary key', async () => {
    const res = await api.put(`keysets/${SET}`, {});
    expect(res.status).toBe(201);
    const { keySet } = res.json();
    expect(keySet).toMatchObject({ setId: SET, state: 'available', primaryKeyId: 'k1', generation: 0, exportStale: true });
    expect(keySet.keys).toEqual([expect.objectContaining({ keyId: 'k1', state: 'primary', items: 0 })]);
    const kek = await stack.keyVault.keyClient().getKey(keySet.kek.name);
    expect(kek.key?.n?.length).toBe(384); // 3072 bits: KEYTURN_KEYSET_KEK_BITS
    expect(kek.properties.expiresOn).toBeUndefined();
    expect(kek.keyOperations?.sort()).toEqual(['unwrapKey', 'wrapKey']);
    expect((await api.put(`keysets/${SET}`, {})).status).toBe(200);
  });

  test('then items are stored, read back, listed without values (paged), deleted; values never reach Cosmos DB', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
    await inParallel(ids, 8, async (id) => {
      const res = await api.put(`keysets/${SET}/items/${id}`, { value: `secret of ${id} ✓`, owner: `owner-${id}` });
      // The problem body names the failing dependency if it is not a 201.
      if (res.status !== 201) throw new Error(`PUT ${id}: ${res.status} ${res.text}`);
    });
    const read = (await api.get(`keysets/${SET}/items/svc-007`)).json();
    expect(read).toEqual({ value: 'secret of svc-007 ✓', keyId: 'k1', owner: 'owner-svc-007', updatedAt: expect.any(String) });
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = (await api.get(`keysets/${SET}/items?top=10${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`)).json();
      expect(page.items.length).toBeLessThanOrEqual(10);
      for (const item of page.items) {
        expect(Object.keys(item).sort()).toEqual(['itemId', 'keyId', 'owner', 'state', 'updatedAt']);
        seen.push(item.itemId);
      }
      token = page.continuationToken;
    } while (token);
    expect(seen).toEqual(ids);
    const docs = await cosmosOf(stack).itemsOf(SET);
    expect(JSON.stringify(docs)).not.toContain('secret of');
    expect(docs[0]!.ciphertext).toMatch(/^kt1\.k1\./);
    expect((await api.del(`keysets/${SET}/items/svc-024`)).status).toBe(204);
    expect((await api.get(`keysets/${SET}/items/svc-024`)).status).toBe(404);
    expect((await api.del(`keysets/${SET}/items/svc-024`)).status).toBe(404);
  });

  test('bad input is a 400 naming the field, unknown sets a 404', async () => {
    for (const [path, body, field] of [
      ['keysets/bad!id', {}, 'route.set'],
      [`keysets/${SET}/items/x`, { value: 'a'.repeat(16 * 1024 + 1), owner: 'o' }, 'value'],
      [`keysets/${SET}/items/x`, { value: 'é'.repeat(9000), owner: 'o' }, 'value'],
      [`keysets/${SET}/items/x`, { value: 'v' }, 'owner'],
      [`keysets/${SET}/items/${'x'.repeat(129)}`, { value: 'v', owner: 'o' }, 'route.itemId'],
      ['keysets/other', { kekUrl: 'https://evil.example.com/keys/k' }, 'kekUrl'],
    ] as const) {
      const res = await api.put(path, body);
      expect([res.status, res.json().field]).toEqual([400, field]);
    }
    expect((await api.get(`keysets/${SET}/items?continuationToken=forged.token`)).json().field).toBe('query.continuationToken');
    expect((await api.get('keysets/nobody/items/a')).status).toBe(404);
    expect((await api.put('keysets/nobody/items/a', { value: 'v', owner: 'o' })).status).toBe(404);
    expect((await api.get('keysets/nobody')).status).toBe(404);
  });

  test('then a ciphertext copied onto another item in Cosmos DB fails with 409 CIPHERTEXT_INVALID, never a 500', async () => {
    const { items } = cosmosOf(stack);
    const { resource: from } = await items.item('svc-001', SET).read();
    const { resource: to } = await items.item('svc-002', SET).read();
    await items.item('svc-002', SET).replace({ ...to, ciphertext: from.ciphertext });
    const res = await api.get(`keysets/${SET}/items/svc-002`);
    expect([res.status, res.json().code]).toEqual([409, 'CIPHERTEXT_INVALID']);
    expect(res.text).not.toContain('secret of');
    // A re-PUT makes it whole again.
    expect((await api.put(`keysets/${SET}/items/svc-002`, { value: 'fresh', owner: 'owner-svc-002' })).status).toBe(200);
    expect((await api.get(`keysets/${SET}/items/svc-002`)).json().value).toBe('fresh');
  });

  test('then an added key is primary at once: new writes use it, old items still read, the old key cannot be retired while used', async () => {
    const added = await api.post(`keysets/${SET}/keys`, {});
    expect(added.status).toBe(201);
    expect(added.json().keySet).toMatchObject({ primaryKeyId: 'k2', exportStale: true });
    expect((await api.put(`keysets/${SET}/items/new-one`, { value: 'on k2', owner: 'o' })).json().item.keyId).toBe('k2');
    expect((await api.get(`keysets/${SET}/items/svc-003`)).json()).toMatchObject({ value: 'secret of svc-003 ✓', keyId: 'k1' });
    const view = (await api.get(`keysets/${SET}`)).json().keySet;
    expect(view.keys.map((k: any) => [k.keyId, k.state, k.items])).toEqual([
      ['k1', 'active', 24],
      ['k2', 'primary', 1],
    ]);
    const refused = await api.post(`keysets/${SET}/keys/k1/retire`);
    expect([refused.status, refused.json().code]).toEqual([409, 'KEY_IN_USE']);
    expect((await api.post(`keysets/${SET}/keys/k2/retire`)).json().code).toBe('KEY_IN_USE');
    expect((await api.post(`keysets/${SET}/keys/k9/retire`)).status).toBe(404);
  });
});
