/**
 * Crashes on the local stack: the host runs with KEYTURN_FAULTS armed (`point*1` fires
 * once per process), dies at a step boundary or between a claim and its side effect,
 * and is restarted with the remaining points armed; the emulator's clock is moved past
 * the lease so the new process takes the step over. Graph is the local stub (see
 * renewal.test.ts). The rotation must complete with no orphan at the provider.
 */
import { eventually } from '../../helpers/process';
import { type TestStack, startStack } from '../../helpers/stack';
import { type GraphStub, startGraphStub } from '../../unit/renewal/graphStub';
import { APP, DAY_S, assertNoValueLeaked, cosmos, seedEntra, versions } from './helpers';

const POINTS = ['create', 'verify', 'promote', 'notify', 'retire'].flatMap((s) =>
  s === 'create' ? [`${s}:before`, `${s}:claimed`, `${s}:provider`, `${s}:after`] : [`${s}:before`, `${s}:claimed`, `${s}:after`],
);
const LEASE_S = 30;

describe('When the host crashes at every step boundary of a rotation', () => {
  let stack: TestStack;
  let graph: GraphStub;

  beforeAll(async () => {
    graph = await startGraphStub();
    stack = await startStack({
      env: {
        KEYTURN_GRAPH_ENDPOINT: graph.url,
        KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *',
        KEYTURN_ROTATION_LEASE_SECONDS: String(LEASE_S),
        KEYTURN_FAULTS: POINTS.map((p) => `${p}*1`).join(','),
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await graph?.stop();
  });

  test('then each restart resumes it: it completes, one new version, no orphan password, invariants hold', async () => {
    const { old } = await seedEntra(stack, graph, 'crashy-secret', 10);
    const host = stack.host!;
    const fired: string[] = [];
    let remaining = [...POINTS];
    while (remaining.length > 0) {
      const point = await eventually(
        async () => {
          const hit = remaining.find((p) => host.logs().some((l) => l.includes(`Injected fault at '${p}'`)));
          if (!hit) await stack.keyVault.moveClock(DAY_S); // time passes (grace), timers fire
          return hit;
        },
        `a crash at one of ${remaining.join(', ')}`,
        120_000,
        1000,
      );
      fired.push(point);
      remaining = remaining.slice(remaining.indexOf(point) + 1);
      // The crashed process is gone; the new one has only the later points armed.
      await host.restart({ KEYTURN_FAULTS: remaining.map((p) => `${p}*1`).join(',') });
      // Past the dead owner's lease and the grace period: the new process takes over at once.
      await stack.keyVault.moveClock(8 * DAY_S);
      process.stdout.write(`crash test: crashed at ${point}, restarted\n`);
    }
    expect(fired).toEqual(POINTS);
    const rotation = await eventually(async () => {
      const r = (await cosmos(stack).rotations()).find((x) => x.credentialId === 'local:crashy-secret');
      if (r?.status !== 'completed') await stack.keyVault.moveClock(8 * DAY_S);
      return r?.status === 'completed' ? r : undefined;
    }, 'the rotation to complete', 120_000, 1000);
    expect(rotation.attempt).toBe(1);

    const all = await versions(stack.keyVault.secretClient(), 'crashy-secret');
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ enabled: false, tags: expect.objectContaining({ 'keyturn-stage': 'retired' }) });
    const current = await stack.keyVault.secretClient().getSecret('crashy-secret');
    const newKeyId = current.properties.tags?.['keyturn-credential-id'];
    // No orphan: the only password left at Graph is the current one, and it holds the current value.
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([newKeyId]);
    expect(graph.passwords(APP)[0]!.secretText).toBe(current.value);
    expect(newKeyId).not.toBe(old.keyId);
    const pending = await versions(stack.keyVault.secretClient(), 'crashy-secret--pending');
    expect(pending.every((p) => !p.enabled)).toBe(true);
    await assertNoValueLeaked(stack, graph);
  }, 900_000);
});
