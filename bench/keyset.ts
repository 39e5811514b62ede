/**
 * Key-set re-encryption: items moved onto a new primary per second (queue-triggered
 * batches of 1,000) beside the bare Cosmos DB write rate measured in the same run (the
 * ratio; goal ≥ 0.8), Key Vault unwraps per data key (from the emulator's request log),
 * and the functions host's RSS sampled through the job (it must stay flat).
 * The rate is the first pass's (the pass that moves the items): a job started right
 * after the key was added also waits for its final pass until other hosts stopped
 * writing on the old key (primary TTL + 1 s), a fixed wait shown apart — at the tiny
 * size it is most of the job.
 * 100,000 items at full size; KEYTURN_BENCH_SCALE=tiny for a smoke run.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { expectStatus, fmt, httpClient, scaled, sleep, table } from './lib';
import { cosmosClient, startApp } from './stack';

const ITEMS = scaled(100_000, 200);
const BATCH = scaled(1000, 50);
const BARE_WRITES = scaled(5000, 200);
const SEED_AT_ONCE = 32;
const VALUE = 'x'.repeat(200);
const MAX_JOB_MS = scaled(3_600_000, 120_000);
/** Job polls: finer at the tiny size, where the first pass takes about a second. */
const POLL_MS = scaled(500, 50);

/** RSS (MB) of the functions host listening on `port` (found by its PORT setting in /proc). */
function hostRssMb(port: number): number {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('host/main.js')) continue;
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`PORT=${port}`)) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (rss) return Number(rss[1]) / 1024;
    } catch {
      // a process that ended meanwhile
    }
  }
  return NaN;
}

export async function run(): Promise<void> {
  const app = await startApp();
  const http = httpClient({ maxSockets: SEED_AT_ONCE });
  const port = Number(new URL(app.url).port);
  const set = 'bench-keyset';
  try {
    expectStatus(await http.call('PUT', `${app.url}/api/keysets/${set}`, { body: {} }), 201, 'PUT keyset');
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: SEED_AT_ONCE }, async () => {
        while (next < ITEMS) {
          const i = next++;
          expectStatus(await http.call('PUT', `${app.url}/api/keysets/${set}/items/item-${String(i).padStart(6, '0')}`, { body: { value: `${i}:${VALUE}`, owner: `owner-${i % 50}` } }), 201, 'PUT item');
        }
      }),
    );
    const seedS = (performance.now() - t0) / 1000;

    // The baseline: the same number of document writes straight to Cosmos DB, same size, same concurrency.
    const cosmos = cosmosClient(app);
    const { container } = await cosmos.database(app.stack.settings.KEYTURN_COSMOS_DATABASE ?? 'keyturn').containers.createIfNotExists({ id: 'benchBareWrites', partitionKey: { paths: ['/setId'] } });
    const doc = { setId: set, owner: 'o', state: 'ok', keyId: 'k2', generation: 0, ciphertext: `kt1.k2.${'A'.repeat(16)}.${'B'.repeat(Math.ceil(((VALUE.length + 22) * 4) / 3))}` };
    const b0 = performance.now();
    let bare = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (bare < BARE_WRITES) {
          const i = bare++;
          await container.items.upsert({ ...doc, id: `bare-${i}`, updatedAt: new Date().toISOString() });
        }
      }),
    );
    const bareRate = (BARE_WRITES * 1000) / (performance.now() - b0);

    expectStatus(await http.call('POST', `${app.url}/api/keysets/${set}/keys`, { body: {} }), 201, 'add key');
    const unwrapsBefore = app.kvRequests.filter((r) => /\/unwrapkey$/i.test(r.path)).length;
    const started = expectStatus(await http.call('POST', `${app.url}/api/keysets/${set}/reencrypt`, { body: { batchSize: BATCH } }), 202, 'reencrypt');
    const { jobId } = JSON.parse(started.text) as { jobId: string };
    const j0 = performance.now();
    const rss: number[] = [hostRssMb(port)];
    let job: { state: string; processed: number; total: number; batches: number; lastError: unknown } | undefined;
    let firstPassS: number | undefined;
    let polls = 0;
    for (;;) {
      if (performance.now() - j0 > MAX_JOB_MS) throw new Error(`the re-encryption took over ${MAX_JOB_MS / 1000} s`);
      await sleep(POLL_MS);
      job = (JSON.parse(expectStatus(await http.call('GET', `${app.url}/api/jobs/${jobId}`), 200, 'GET job').text) as { job: typeof job }).job!;
      // RSS every ~500 ms whatever the poll (reading /proc is not free).
      if (polls++ % Math.max(1, Math.round(500 / POLL_MS)) === 0) rss.push(hostRssMb(port));
      // Every item moved: the first pass is over (the final pass moves only items written meanwhile: none here).
      if (firstPassS === undefined && job.processed >= ITEMS) firstPassS = (performance.now() - j0) / 1000;
      if (job.state === 'completed' || job.state === 'failed') break;
    }
    // The job's own time: from its start to its last batch (each poll adds up to POLL_MS).
    const jobS = (performance.now() - j0) / 1000;
    if (job.state !== 'completed' || job.processed !== ITEMS) throw new Error(`the job ended ${job.state} with ${job.processed}/${ITEMS} items: ${JSON.stringify(job.lastError)}`);
    const passS = firstPassS ?? jobS;
    const rate = ITEMS / passS;
    const unwraps = app.kvRequests.filter((r) => /\/unwrapkey$/i.test(r.path)).length;
    const quarter = Math.max(1, Math.floor(rss.length / 4));
    const rssStart = Math.max(...rss.slice(0, quarter).filter(Number.isFinite));
    const rssEnd = Math.max(...rss.slice(-quarter).filter(Number.isFinite));

    console.log(`keyset: ${ITEMS} items (${VALUE.length + 8}-byte values), re-encrypted onto a new key in batches of ${BATCH}`);
    console.log(
      table(
        ['', 'items', 'seconds', 'items/s'],
        [
          ['seed (PUT through the API)', String(ITEMS), fmt(seedS), fmt(ITEMS / seedS)],
          ['bare Cosmos DB upserts', String(BARE_WRITES), fmt(BARE_WRITES / bareRate), fmt(bareRate)],
          ['re-encryption: first pass (moves every item)', String(ITEMS), fmt(passS), fmt(rate)],
          ['re-encryption: whole job, with the final pass', String(ITEMS), fmt(jobS), fmt(ITEMS / jobS)],
        ],
      ),
    );
    console.log(`  final pass: ${fmt(jobS - passS)} s after the first (it waits until primary TTL + 1 s after the key was added, then finds nothing to move)`);
    console.log(`  batches ${job.batches}; Key Vault unwraps: ${unwraps} in all (${unwraps - unwrapsBefore} during the job) for 2 data keys`);
    console.log(`  host RSS through the job: ${fmt(rss[0]!)} MB at the start, max ${fmt(rssStart)} MB in the first quarter, max ${fmt(rssEnd)} MB in the last (${rss.length} samples)`);
    console.log(`  ratios: re-encryption / bare Cosmos DB writes = ${fmt(rate / bareRate)}x (the first pass; goal >= 0.8; whole job ${fmt(ITEMS / jobS / bareRate)}x); unwraps per data key = ${fmt(unwraps / 2)}; RSS last / first quarter = ${fmt(rssEnd / rssStart)}x`);
  } finally {
    http.close();
    await app.close();
  }
}
