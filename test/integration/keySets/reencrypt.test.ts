/**
 * Batch re-encryption on the real local stack: two functions hosts share the queue;
 * 1,000 items move onto a new primary in batches of 37 while writes go on (one host
 * still on the old primary within its TTL: the final pass catches it); duplicate and
 * stale messages do nothing; a host restarted mid-job; a poison batch fails the job
 * and resume finishes it; one Key Vault unwrap per data key per process.
 */
import { QueueServiceClient } from '@azure/storage-queue';
import { pollUntil } from '../../helpers/host';
import { type TestHost, type TestStack, startStack } from '../../helpers/stack';
import { cosmosOf, inParallel, keySetApi } from './helpers';

const SET = 'tenant-secrets';
const N = 1000;
const idOf = (i: number) => `svc-${String(i).padStart(4, '0')}`;
const valueOf = (id: string) => `password of ${id}: ${'x'.repeat(40)}`;
const HOST_ENV = {
  LOCALHOST_QUEUE_LEASE_SECONDS: '4',
  KEYTURN_BATCH_CLAIM_SECONDS: '5',
  AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:01',
};

describe('When a key set is re-encrypted onto a new key in queue-triggered batches', () => {
  let stack: TestStack;
  let second: TestHost;
  let a: ReturnType<typeof keySetApi>;
  let b: ReturnType<typeof keySetApi>;

  beforeAll(async () => {
    stack = await startStack({ env: HOST_ENV });
    second = await stack.startSecondHost();
    a = keySetApi(stack.host!.url);
    b = keySetApi(second.url);
    expect((await a.put(`keysets/${SET}`, {})).status).toBe(201);
    const ids = Array.from({ length: N }, (_, i) => idOf(i));
    await inParallel(ids, 16, async (id) => {
      const put = () => (Number(id.slice(4)) % 2 ? a : b).put(`keysets/${SET}/items/${id}`, { value: valueOf(id), owner: `owner-${Number(id.slice(4)) % 7}` });
      let res = await put();
      if (res.status === 503) {
        // "Retry later", as a client would (seen at load ~16 on 2 cores); the hosts' warnings say which dependency was slow.
        console.log(`PUT ${id} answered 503; retrying once. Host logs:\n${stack.allLogs().filter((l) => /warn|error/i.test(l)).slice(-10).join('\n')}`);
        res = await put();
      }
      if (res.status !== 201) throw new Error(`seeding ${id}: ${res.status} ${res.text}`);
    });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const job = async (jobId: string) => (await a.get(`jobs/${jobId}`)).json().job;
  const enqueueRaw = async (message: unknown) => {
    const q = QueueServiceClient.fromConnectionString(stack.env.KEYTURN_QUEUE!).getQueueClient(stack.env.KEYTURN_BATCH_QUEUE ?? 'keyturn-batch-jobs');
    await q.sendMessage(Buffer.from(JSON.stringify(message)).toString('base64'));
  };

  test('then every item ends on the primary with its value; writes during the job too; duplicates double nothing', async () => {
    // Host B reads the set (primary k1) just before the key is added on host A.
    expect((await b.put(`keysets/${SET}/items/warm`, { value: 'warm', owner: 'o' })).json().item.keyId).toBe('k1');
    expect((await a.post(`keysets/${SET}/keys`)).json().keySet.primaryKeyId).toBe('k2');
    expect((await a.put(`keysets/${SET}/items/new-one`, { value: 'on k2', owner: 'o' })).json().item.keyId).toBe('k2');
    expect((await a.get(`keysets/${SET}/items/${idOf(5)}`)).json()).toMatchObject({ value: valueOf(idOf(5)), keyId: 'k1' });

    const started = await a.post(`keysets/${SET}/reencrypt`, { batchSize: 37 });
    expect(started.status).toBe(202);
    const { jobId } = started.json();
    expect((await a.post(`keysets/${SET}/reencrypt`, { batchSize: 37 })).json().code).toBe('KEYSET_JOB_RUNNING');

    const { jobs } = cosmosOf(stack);
    const initial = (await jobs.item(jobId, jobId).read()).resource;
    await pollUntil(async () => ((await job(jobId)).batches >= 1 ? true : undefined), 60_000, 50);
    // Host B still writes on k1 (within its primary TTL), behind the first pass's cursor: only the final pass sees it.
    const late = (await b.put(`keysets/${SET}/items/000-late`, { value: 'late value', owner: 'o' })).json().item.keyId;
    // Duplicates of the next message and a stale first message: no-ops.
    const now = (await jobs.item(jobId, jobId).read()).resource;
    await enqueueRaw({ jobId, batch: now.batches, cursor: now.cursor });
    await enqueueRaw({ jobId, batch: now.batches, cursor: now.cursor });
    await enqueueRaw({ jobId, batch: initial.batches, cursor: initial.cursor });
    // Writes during the job, from both hosts.
    const duringKeys = await inParallel(Array.from({ length: 20 }, (_, i) => `during-${i}`), 4, async (id) =>
      (await (id.endsWith('1') ? b : a).put(`keysets/${SET}/items/${id}`, { value: `v-${id}`, owner: 'o' })).json().item.keyId as string,
    );
    // The host is restarted mid-job; the other carries on and both finish it.
    await pollUntil(async () => ((await job(jobId)).batches >= 8 ? true : undefined), 120_000, 100);
    await stack.host!.restart();

    const done = await pollUntil(async () => {
      const j = await job(jobId);
      return j.state === 'completed' || j.state === 'failed' ? j : undefined;
    }, 180_000, 250);
    expect(done).toMatchObject({ id: jobId, kind: 'keyset-reencrypt', state: 'completed', total: N + 1, lastError: null, etaSeconds: 0 });
    // Each moved item counted once (a doubled batch would count its items twice): the seeded ones, and those
    // host B still wrote on k1 within its primary TTL.
    const writtenOnOldKey = [late, ...duringKeys].filter((k) => k === 'k1').length;
    expect(done.processed).toBe(N + 1 + writtenOnOldKey);
    expect(done.batches).toBeGreaterThanOrEqual(Math.ceil((N + 1) / 37));
    expect(done.ratePerSecond).toBeGreaterThan(0);

    const docs = await cosmosOf(stack).itemsOf(SET);
    expect(docs.filter((d) => d.keyId !== 'k2').map((d) => d.id)).toEqual([]);
    const values = await inParallel(Array.from({ length: N }, (_, i) => idOf(i)), 16, async (id) => (await a.get(`keysets/${SET}/items/${id}`)).json());
    values.forEach((v, i) => expect(v).toMatchObject({ value: valueOf(idOf(i)), keyId: 'k2' }));
    expect((await a.get(`keysets/${SET}/items/000-late`)).json()).toMatchObject({ value: 'late value', keyId: 'k2' });
    expect((await a.get(`keysets/${SET}`)).json().keySet.keys.map((k: any) => [k.keyId, k.items])).toEqual([
      ['k1', 0],
      ['k2', N + 23],
    ]);
    expect((await a.post(`keysets/${SET}/keys/k1/retire`)).json().keySet.keys[0].state).toBe('retired');
    expect(stack.allLogs().some((l) => l.includes('Batch message skipped'))).toBe(true);
  }, 400_000);

  test('then a poison batch fails the job with the batch and its code, and resume finishes it', async () => {
    expect((await a.post(`keysets/${SET}/keys`)).json().keySet.primaryKeyId).toBe('k3');
    const { items } = cosmosOf(stack);
    const { resource: from } = await items.item(idOf(3), SET).read();
    const { resource: to } = await items.item(idOf(4), SET).read();
    await items.item(idOf(4), SET).replace({ ...to, ciphertext: from.ciphertext });
    const { jobId } = (await a.post(`keysets/${SET}/reencrypt`, { batchSize: 500 })).json();
    const failed = await pollUntil(async () => {
      const j = await job(jobId);
      return j.state === 'failed' ? j : undefined;
    }, 90_000, 250);
    expect(failed.lastError).toMatchObject({ batch: 1, code: 'CIPHERTEXT_INVALID', attempts: 5 });
    expect((await a.post(`keysets/${SET}/reencrypt`, {})).json().code).toBe('KEYSET_JOB_RUNNING');
    // The owner stores the value again; the job resumes from the failed batch.
    expect((await a.put(`keysets/${SET}/items/${idOf(4)}`, { value: valueOf(idOf(4)), owner: 'o' })).status).toBe(200);
    const resumed = await a.post(`jobs/${jobId}/resume`);
    expect(resumed.status).toBe(202);
    expect((await a.post(`jobs/${jobId}/resume`)).json().code).toBe('JOB_NOT_RESUMABLE');
    const done = await pollUntil(async () => {
      const j = await job(jobId);
      return j.state === 'completed' ? j : undefined;
    }, 120_000, 250);
    expect(done.lastError).toMatchObject({ batch: 1, code: 'CIPHERTEXT_INVALID' });
    const docs = await cosmosOf(stack).itemsOf(SET);
    expect(docs.filter((d) => d.keyId !== 'k3').length).toBe(0);
    expect((await a.get(`keysets/${SET}/items/${idOf(4)}`)).json().value).toBe(valueOf(idOf(4)));
    expect((await a.get(`jobs/job-00000000-0000-0000-0000-000000000000`)).status).toBe(404);
    expect((await a.get(`jobs/nope`)).json().field).toBe('route.jobId');
  }, 300_000);

  test('then each process unwrapped each data key once (TTL 300 s), however many items it read and wrote', () => {
    const unwraps = stack.allLogs().filter((l) => l.includes('data key unwrapped by Key Vault'));
    const perProcessAndKey = new Map<string, number>();
    for (const line of unwraps) {
      const { keyId, pid } = JSON.parse(line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1));
      perProcessAndKey.set(`${pid}/${keyId}`, (perProcessAndKey.get(`${pid}/${keyId}`) ?? 0) + 1);
    }
    expect(perProcessAndKey.size).toBeGreaterThanOrEqual(4);
    expect([...perProcessAndKey.values()].every((n) => n === 1)).toBe(true);
  });

  // Last: its own set (the test above counts unwraps per process and key id).
  test('then a retire waits out the stale-primary window: a write on the old primary within it is re-encrypted, nothing stays on a retired key', async () => {
    // Host B must write within its 5 s window after reading the set; a loaded machine can take
    // longer between the two (B then re-reads and writes on k2), so the race is set up again.
    let RACE = '';
    for (let attempt = 1; ; attempt++) {
      RACE = `retire-race-${attempt}`;
      expect((await a.put(`keysets/${RACE}`, {})).status).toBe(201);
      // Host B reads the set (primary k1) — an unknown item answers 404 after the set is read.
      const readAt = Date.now();
      expect((await b.get(`keysets/${RACE}/items/none`)).status).toBe(404);
      expect((await a.post(`keysets/${RACE}/keys`)).json().keySet.primaryKeyId).toBe('k2');
      // k1 holds no item yet, but hosts may still encrypt with it: the retire is refused (it was allowed before).
      const soon = await a.post(`keysets/${RACE}/keys/k1/retire`);
      expect([soon.status, soon.json().code]).toEqual([409, 'KEY_RETIRE_TOO_SOON']);
      expect(soon.json().retryAfterSeconds).toBeGreaterThanOrEqual(1);
      // ...and indeed host B, within its window, writes on k1.
      const stale = (await b.put(`keysets/${RACE}/items/stale`, { value: 'written on the old primary', owner: 'o' })).json().item.keyId;
      if (stale === 'k1') break;
      if (attempt === 3 || Date.now() - readAt < 5_000) expect(stale).toBe('k1');
    }
    expect((await a.put(`keysets/${RACE}/items/fresh`, { value: 'on k2', owner: 'o' })).json().item.keyId).toBe('k2');
    expect((await a.post(`keysets/${RACE}/keys/k1/retire`)).json().code).toBe('KEY_IN_USE');
    // The re-encryption's final pass starts after the window; then the retire goes through.
    const { jobId } = (await a.post(`keysets/${RACE}/reencrypt`, { batchSize: 10 })).json();
    const done = await pollUntil(async () => {
      const j = await job(jobId);
      return j.state === 'completed' || j.state === 'failed' ? j : undefined;
    }, 60_000, 200);
    expect(done).toMatchObject({ state: 'completed', processed: 1 });
    const retired = await a.post(`keysets/${RACE}/keys/k1/retire`);
    expect(retired.status).toBe(200);
    expect(retired.json().keySet.keys.map((k: any) => [k.keyId, k.state, k.items])).toEqual([
      ['k1', 'retired', 0],
      ['k2', 'primary', 2],
    ]);
    // Host B writes on k2 now; no item document names the retired key.
    expect((await b.put(`keysets/${RACE}/items/later`, { value: 'later', owner: 'o' })).json().item.keyId).toBe('k2');
    const docs = await cosmosOf(stack).itemsOf(RACE);
    expect(docs.map((d) => [d.id, d.keyId]).sort()).toEqual([['fresh', 'k2'], ['later', 'k2'], ['stale', 'k2']]);
    expect((await b.get(`keysets/${RACE}/items/stale`)).json()).toMatchObject({ value: 'written on the old primary', keyId: 'k2' });
  }, 120_000);
});
