/**
 * The Key Vault events webhook under a junk flood, on the local stack with the real app:
 * a full delivery of junk is acknowledged and summarised into a handful of dead-letter
 * documents; a delivery over Event Grid's limits is refused whole (413) and reaches nothing.
 */
import { performance } from 'node:perf_hooks';
import { type TestStack, startStack } from '../../helpers/stack';
import { cosmos, deliver } from '../renewal/helpers';

describe('The events webhook under a junk flood', () => {
  let stack: TestStack;
  let host: string;

  beforeAll(async () => {
    stack = await startStack({ env: { KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *' } });
    host = stack.host!.url;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const junk = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => (i % 3 === 0 ? { id: `${tag}-${i}`, nonsense: true } : { id: `${tag}-${i}`, topic: stack.keyVault.topic, eventType: 'Microsoft.Storage.BlobCreated', subject: 'x', data: {} }));

  test('5,000 junk events in one delivery: acknowledged, a handful of summarised dead letters counting all 5,000', async () => {
    const started = performance.now();
    const res = await deliver(host, junk(5000, 'flood'));
    const seconds = (performance.now() - started) / 1000;
    console.log(`5,000 junk events acknowledged in ${seconds.toFixed(2)} s`);
    if (res.status !== 202) console.log(res.text.slice(0, 500), stack.allLogs().filter((l) => /error|fail|exception/i.test(l)).slice(0, 20).join('\n'));
    expect(res.status).toBe(202);
    const letters = (await cosmos(stack).deadLetters()).filter((l) => String(l.event?.id ?? '').startsWith('flood-'));
    console.log(`${letters.length} dead-letter documents for them`);
    expect(letters.length).toBeGreaterThan(0);
    expect(letters.length).toBeLessThanOrEqual(50);
    expect(letters.reduce((sum, l) => sum + l.count, 0)).toBe(5000);
    const byReason: Record<string, number> = {};
    for (const l of letters) for (const [reason, n] of Object.entries(l.reasons as Record<string, number>)) byReason[reason] = (byReason[reason] ?? 0) + n;
    expect(byReason).toEqual({ malformed: 1667, unsupported: 3333 });
    for (const l of letters) {
      expect(l).toMatchObject({ source: expect.any(String), reason: expect.any(String), detail: expect.any(String), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(l.more.length).toBeLessThanOrEqual(19);
    }
  });

  test('more than 5,000 events or more than 1 MB is a 413, and the function never sees it', async () => {
    const before = (await cosmos(stack).deadLetters()).length;
    expect((await deliver(host, junk(5001, 'over-count'))).status).toBe(413);
    const big = [{ id: 'over-size', nonsense: 'x'.repeat(1024 * 1024) }];
    expect((await deliver(host, big)).status).toBe(413);
    // A delivery at the limits is still taken.
    expect((await deliver(host, [{ id: 'at-limit', nonsense: 'x'.repeat(1000 * 1000) }])).status).toBe(202);
    const after = await cosmos(stack).deadLetters();
    expect(after.length).toBe(before + 1);
    expect(after.some((l) => String(l.event?.id).startsWith('over-'))).toBe(false);
  });
});
