/** Key-set rules: the ciphertext format and its binding, the data-key cache, use reservations, the loss window. */
import { ConcurrencyConflict } from '../../../shared/errors';
import { type DataKey, type KeySet, decodeItemCursor, encodeItemCursor, formatCiphertext, kekLost, parseCiphertext, retireRefusal, valueBytes } from '../../../shared/domain/keySet';
import { newDataKey, open, seal } from '../../../shared/domain/keySetCipher';
import { DataKeyCache, KeyExhausted, UseReservations } from '../../../shared/services/keySets/dataKeys';
import type { Versioned } from '../../../shared/ports';

const key = newDataKey();
const binding = { setUid: 'uid-1', itemId: 'item-1', keyId: 'k1' };

describe('key-set ciphertexts', () => {
  test('round-trip; each encryption has a fresh nonce', () => {
    const a = seal(key, binding, Buffer.from('secret'));
    const b = seal(key, binding, Buffer.from('secret'));
    expect(Buffer.from(a.nonce).equals(Buffer.from(b.nonce))).toBe(false);
    const text = formatCiphertext(a);
    expect(text).toMatch(/^kt1\.k1\./);
    expect(open(key, binding, parseCiphertext(text)).toString()).toBe('secret');
  });

  test.each([
    ['another item', { setUid: 'uid-1', itemId: 'item-2' }],
    ['another set', { setUid: 'uid-2', itemId: 'item-1' }],
  ])('moved to %s → CIPHERTEXT_INVALID', (_label, other) => {
    const sealed = parseCiphertext(formatCiphertext(seal(key, binding, Buffer.from('secret'))));
    expect(() => open(key, other, sealed)).toThrow(expect.objectContaining({ code: 'CIPHERTEXT_INVALID' }));
  });

  test('a key id changed in the text, a tampered byte or junk → CIPHERTEXT_INVALID', () => {
    const text = formatCiphertext(seal(key, binding, Buffer.from('secret')));
    expect(() => open(key, binding, parseCiphertext(text.replace('kt1.k1.', 'kt1.k2.')))).toThrow(expect.objectContaining({ code: 'CIPHERTEXT_INVALID' }));
    const last = text.at(-2) === 'A' ? 'B' : 'A';
    expect(() => open(key, binding, parseCiphertext(`${text.slice(0, -2)}${last}${text.at(-1)}`))).toThrow(expect.objectContaining({ code: 'CIPHERTEXT_INVALID' }));
    expect(() => parseCiphertext('nope')).toThrow(expect.objectContaining({ code: 'CIPHERTEXT_INVALID' }));
  });

  test('values are limited to 16 KiB of UTF-8; listing tokens are checked', () => {
    expect(valueBytes('a'.repeat(16384)).length).toBe(16384);
    expect(() => valueBytes('é'.repeat(8193))).toThrow(expect.objectContaining({ field: 'value' }));
    expect(decodeItemCursor(encodeItemCursor('svc-7'))).toBe('svc-7');
    expect(() => decodeItemCursor(`${encodeItemCursor('svc-7')}x`)).toThrow(expect.objectContaining({ field: 'query.continuationToken' }));
  });

  test('the KEK is lost only after failures spanning the window', () => {
    const since = '2026-01-01T00:00:00.000Z';
    expect(kekLost(undefined, new Date('2026-01-02T00:00:00Z'), 600_000)).toBe(false);
    expect(kekLost(since, new Date('2026-01-01T00:09:59Z'), 600_000)).toBe(false);
    expect(kekLost(since, new Date('2026-01-01T00:10:00Z'), 600_000)).toBe(true);
  });
});

describe('retiring a key', () => {
  const set = { setId: 's', primaryKeyId: 'k2', primarySince: '2026-01-01T00:00:00.000Z' } as KeySet;
  const k1 = { keyId: 'k1', state: 'active' } as DataKey;
  const at = (ms: number) => new Date(Date.parse(set.primarySince) + ms);

  test('refused for the primary and while items use it (KEY_IN_USE)', () => {
    expect(retireRefusal(set, { ...k1, keyId: 'k2' }, 0, at(60_000), 5000)?.code).toBe('KEY_IN_USE');
    expect(retireRefusal(set, k1, 3, at(60_000), 5000)?.details).toMatchObject({ items: 3 });
  });

  test('refused until hosts stopped encrypting with it: the primary TTL and the write grace since the demotion', () => {
    const soon = retireRefusal(set, k1, 0, at(1000), 5000);
    expect([soon?.code, soon?.details.retryAfterSeconds, soon?.details.settledAt]).toEqual(['KEY_RETIRE_TOO_SOON', 5, '2026-01-01T00:00:06.000Z']);
    expect(retireRefusal(set, k1, 0, at(5999), 5000)?.code).toBe('KEY_RETIRE_TOO_SOON');
    expect(retireRefusal(set, k1, 0, at(6000), 5000)).toBeUndefined();
  });
});

const dataKey = (wrapped = 'w1'): DataKey => ({
  id: 'key:k1', setId: 's', keyId: 'k1', state: 'active', wrapped, kek: { vaultUrl: 'https://v', name: 'kek', version: '1' },
  generation: 0, reservedUses: 0, createdAt: '', updatedAt: '',
});

describe('the data-key cache', () => {
  test('one unwrap per key per TTL, shared by concurrent readers; a failure is not cached', async () => {
    let calls = 0;
    let fail = false;
    let t = 0;
    const cache = new DataKeyCache(
      { unwrap: async () => { calls++; await new Promise((r) => setTimeout(r, 5)); if (fail) throw new Error('down'); return key; } },
      1000,
      () => t,
    );
    await Promise.all(Array.from({ length: 50 }, () => cache.get('uid', dataKey())));
    expect(calls).toBe(1);
    t = 999;
    await cache.get('uid', dataKey());
    expect(calls).toBe(1);
    t = 1000;
    fail = true;
    await expect(cache.get('uid', dataKey())).rejects.toThrow('down');
    fail = false;
    await cache.get('uid', dataKey());
    expect(calls).toBe(3);
    await cache.get('uid', dataKey('w2')); // re-wrapped: another entry
    expect(cache.unwraps).toBe(4);
  });
});

describe('use reservations', () => {
  function store(start: number) {
    let doc = { ...dataKey(), reservedUses: start };
    let etag = 'e0';
    let writes = 0;
    return {
      writes: () => writes,
      reserved: () => doc.reservedUses,
      readKey: async (): Promise<Versioned<DataKey>> => ({ doc: { ...doc }, etag }),
      replaceKey: async (d: DataKey, e: string) => {
        if (e !== etag) throw new ConcurrencyConflict('changed', d.id);
        doc = d;
        etag = `e${++writes}`;
        return { doc, etag };
      },
    };
  }

  test('blocks are reserved on the key document and spent locally; two processes never share a use', async () => {
    const s = store(0);
    const a = new UseReservations(s, 10, 100);
    const b = new UseReservations(s, 10, 100);
    await Promise.all(Array.from({ length: 25 }, () => a.take('u', 's', 'k1')));
    await b.take('u', 's', 'k1');
    expect(s.reserved()).toBe(40);
    expect(s.writes()).toBe(4);
  });

  test('a key whose next block would pass the limit encrypts no more', async () => {
    const s = store(95);
    await expect(new UseReservations(s, 10, 100).take('u', 's', 'k1')).rejects.toBeInstanceOf(KeyExhausted);
  });
});
