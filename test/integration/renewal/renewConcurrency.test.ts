/**
 * Impatient users on the local stack: renew calls for the same secrets, at once, from
 * two functions hosts, with `fromVersion` and `Idempotency-Key` (kept in the Cosmos DB
 * `idempotencyKeys` container). One rotation per secret, and a managed secret never
 * has more than two enabled versions.
 */
import { type TestStack, startStack } from '../../helpers/stack';
import { call, cosmos, seedSymmetric, versions, waitForState } from './helpers';

const NAMES = ['imp-a', 'imp-b', 'imp-c', 'imp-d'];

describe('When renew is called many times at once from two hosts', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ env: { KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *' } });
  });
  afterAll(() => stack?.stop());

  test('then fromVersion makes one rotation per secret, Idempotency-Key replays, and at most two versions are enabled', async () => {
    const second = await stack.startSecondHost();
    try {
      const hosts = [stack.host!.url, second.url];
      const client = stack.keyVault.secretClient();
      // Outside the renewal window: only the renew calls start rotations.
      const seeded = [];
      for (const n of NAMES) seeded.push(await seedSymmetric(stack, n, 200));
      const renew = (host: string, name: string, body?: unknown, headers: Record<string, string> = {}) =>
        call('POST', `${host}/api/credentials/local/${name}/renew`, { ...(body !== undefined ? { body } : {}), headers });

      const wave = await Promise.all(
        seeded.flatMap((s) => [0, 1, 2, 3, 4, 5].map((i) => renew(hosts[i % 2]!, s.name, { fromVersion: s.version! }))),
      );
      for (const [i, s] of seeded.entries()) {
        const mine = wave.slice(i * 6, i * 6 + 6);
        // Every answer is the one rotation (202 for the call that started it, 200 for the others), or a 409 while it started.
        expect(mine.map((r) => r.status).every((st) => st === 200 || st === 202 || st === 409)).toBe(true);
        expect(mine.filter((r) => r.status === 202)).toHaveLength(1);
        for (const r of mine.filter((x) => x.status !== 409)) expect(r.json<{ rotationId: string }>().rotationId).toBe(`local:${s.name}:${s.version!}:1`);
        await waitForState(hosts[0]!, s.name, 'grace');
      }
      const rotations = await cosmos(stack).rotations();
      for (const n of NAMES) expect(rotations.filter((r) => r.credentialId === `local:${n}`)).toHaveLength(1);

      // Repeated later with the old version: 200 with the rotation that replaced it, nothing new.
      const late = await renew(hosts[1]!, NAMES[0]!, { fromVersion: seeded[0]!.version });
      expect([late.status, late.json<{ rotationId: string }>().rotationId]).toEqual([200, `local:${NAMES[0]}:${seeded[0]!.version}:1`]);
      const unknown = await renew(hosts[0]!, NAMES[0]!, { fromVersion: 'ffffffffffffffffffffffffffffffff' });
      expect([unknown.status, unknown.json<{ code: string }>().code]).toEqual([409, 'VERSION_NOT_CURRENT']);
      const bad = await renew(hosts[0]!, NAMES[0]!, { fromVersion: 'not a version!' });
      expect([bad.status, bad.json<{ field: string }>().field]).toEqual([400, 'fromVersion']);

      // In grace, a second renew (same key from both hosts) retires the previous version first.
      const key = { 'idempotency-key': `again-${NAMES[1]}` };
      const [k1, k2] = await Promise.all(hosts.map((h) => renew(h, NAMES[1]!, undefined, key)));
      expect([k1!.status, k2!.status].sort()).toEqual([202, 202]);
      expect(k1!.json<{ rotationId: string }>().rotationId).toBe(k2!.json<{ rotationId: string }>().rotationId);
      expect([k1!.headers['idempotent-replayed'], k2!.headers['idempotent-replayed']].filter(Boolean)).toEqual(['true']);
      const reused = await renew(hosts[0]!, NAMES[2]!, undefined, key);
      expect([reused.status, reused.json<{ code: string }>().code]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);
      await eventuallyGrace(hosts[0]!, NAMES[1]!, k1!.json<{ rotationId: string }>().rotationId);
      const all = await versions(client, NAMES[1]!);
      expect(all.map((v) => v.enabled)).toEqual([false, true, true]);

      for (const n of NAMES) {
        expect((await versions(client, n)).filter((v) => v.enabled).length).toBeLessThanOrEqual(2);
        expect((await versions(client, `${n}--pending`)).filter((v) => v.enabled)).toEqual([]);
      }
    } finally {
      await second.stop();
    }
  });
});

async function eventuallyGrace(host: string, name: string, rotationId: string) {
  const row = await waitForState(host, name, 'grace');
  expect(row.rotation?.id).toBe(rotationId);
}
