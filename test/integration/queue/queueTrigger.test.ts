/**
 * Queue triggers in the local host against Azurite, with the real QueueClient:
 * each message processed once, a failing message poisoned after maxDequeueCount,
 * a message whose host is killed mid-run redelivered after its invisibility lapses.
 */
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type RunningAzurite } from '../../../local/azurite';
import { pollUntil, startHostProcess, type HostProcess } from '../../helpers/host';
import { storageJobQueue } from '../../../shared/adapters/storageJobQueue';
import { EffectsFile } from '../host/fixtureEffects';

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v), 'utf8').toString('base64');

describe('local host: queue triggers', () => {
  let azurite: RunningAzurite;
  let dataDir: string;
  let service: QueueServiceClient;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'keyturn-queue-'));
    azurite = await startAzurite({ ports: { blob: 0, queue: 0, table: 0 }, dataDir, log: () => undefined });
    service = QueueServiceClient.fromConnectionString(azurite.connectionString);
  });
  afterAll(async () => {
    await azurite?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function hostFor(queueName: string, effects: EffectsFile, extra: Record<string, string> = {}): Promise<HostProcess> {
    return startHostProcess({
      env: {
        FIXTURE_EFFECTS_FILE: effects.path,
        FIXTURE_QUEUE: queueName,
        FIXTURE_QUEUE_CONNECTION: azurite.connectionString,
        LOCALHOST_DISABLE_TIMERS: 'true',
        AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:01',
        AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:00',
        ...extra,
      },
    });
  }

  async function queue(name: string): Promise<QueueClient> {
    const q = service.getQueueClient(name);
    await q.createIfNotExists();
    return q;
  }

  it('lists the queue function and processes 100 messages exactly once each', async () => {
    const effects = new EffectsFile();
    const q = await queue('work-hundred');
    const host = await hostFor('work-hundred', effects);
    try {
      await host.waitForLine("queueWork: queueTrigger (queue 'work-hundred', connection FIXTURE_QUEUE_CONNECTION)", 5000);
      const listed = await (await fetch(`${host.url}/admin/functions`)).json();
      expect(listed).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'queueWork', triggerType: 'queueTrigger', queueName: 'work-hundred', isDisabled: false })]));
      for (let n = 0; n < 100; n++) await q.sendMessage(b64({ n }));
      await pollUntil(() => (effects.of('queue-done').length >= 100 ? true : undefined), 60_000, 200);
      // A moment more: a duplicate delivery would show up now.
      await new Promise((r) => setTimeout(r, 1500));
      const done = effects.of('queue-done').map((e) => (e.message as { n: number }).n);
      expect(done.sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
      expect(effects.of('queue').every((e) => e.dequeueCount === 1)).toBe(true);
      expect((await q.getProperties()).approximateMessagesCount).toBe(0);
    } finally {
      await host.stop();
      effects.remove();
    }
  });

  it("the app's JobQueue adapter enqueues what the trigger reads (base64 JSON, queue created on first use)", async () => {
    const effects = new EffectsFile();
    const host = await hostFor('work-from-app', effects);
    try {
      const jobs = storageJobQueue({ connectionString: azurite.connectionString, credential: () => { throw new Error('no identity locally'); } });
      await jobs.enqueue('work-from-app', { job: 'reencrypt', batch: 3 });
      const done = await pollUntil(() => effects.of('queue-done')[0], 20_000, 100);
      expect(done.message).toEqual({ job: 'reencrypt', batch: 3 });
    } finally {
      await host.stop();
      effects.remove();
    }
  });

  it('moves a message whose handler throws to {queue}-poison after 5 dequeues', async () => {
    const effects = new EffectsFile();
    const q = await queue('work-poison-test');
    const host = await hostFor('work-poison-test', effects);
    try {
      await q.sendMessage(b64({ n: 7, fail: true }));
      const poison = service.getQueueClient('work-poison-test-poison');
      const moved = await pollUntil(
        async () => {
          if (!(await poison.exists())) return undefined;
          const peek = await poison.peekMessages();
          return peek.peekedMessageItems[0];
        },
        30_000,
        200,
      );
      expect(JSON.parse(Buffer.from(moved.messageText, 'base64').toString('utf8'))).toEqual({ n: 7, fail: true });
      expect(effects.of('queue').map((e) => e.dequeueCount)).toEqual([1, 2, 3, 4, 5]);
      expect(effects.of('queue-done')).toEqual([]);
      expect((await q.getProperties()).approximateMessagesCount).toBe(0);
    } finally {
      await host.stop();
      effects.remove();
    }
  });

  it('makes a failed message visible again after host.json visibilityTimeout (maxDequeueCount from host.json too)', async () => {
    const effects = new EffectsFile();
    const q = await queue('work-visibility');
    const host = await hostFor('work-visibility', effects, {
      AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:02',
      AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2',
    });
    try {
      await q.sendMessage(b64({ n: 3, fail: true }));
      const poison = service.getQueueClient('work-visibility-poison');
      await pollUntil(async () => ((await poison.exists()) && (await poison.peekMessages()).peekedMessageItems.length === 1 ? true : undefined), 30_000, 200);
      const attempts = effects.of('queue');
      expect(attempts.map((e) => e.dequeueCount)).toEqual([1, 2]);
      expect(Date.parse(attempts[1]!.at as string) - Date.parse(attempts[0]!.at as string)).toBeGreaterThanOrEqual(1900);
    } finally {
      await host.stop();
      effects.remove();
    }
  });

  it('redelivers a message whose host was killed mid-run, once its invisibility lapses', async () => {
    const effects = new EffectsFile();
    const q = await queue('work-crash');
    const lease = { LOCALHOST_QUEUE_LEASE_SECONDS: '2' };
    let host = await hostFor('work-crash', effects, lease);
    try {
      await q.sendMessage(b64({ n: 1, slowMs: 4000 }));
      await pollUntil(() => (effects.of('queue').length === 1 ? true : undefined), 20_000, 100);
      // While it runs (longer than one lease), the renewed invisibility keeps it from a second delivery.
      await new Promise((r) => setTimeout(r, 2500));
      expect(effects.of('queue')).toHaveLength(1);
      await host.stop('SIGKILL');
      host = await hostFor('work-crash', effects, lease);
      const again = await pollUntil(() => effects.of('queue-done')[0], 30_000, 200);
      expect(again.dequeueCount).toBe(2);
      expect(effects.of('queue').map((e) => e.dequeueCount)).toEqual([1, 2]);
    } finally {
      await host.stop();
      effects.remove();
    }
  });
});
