/**
 * `npm run demo:key-set` (with `npm start` running): stores a few hundred credentials in
 * an encryption key set, adds a key, re-encrypts with a progress bar, exports (two
 * approvers), abandons and shows the re-entry events. It never prints a value.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { requestJson } from './httpJson';
import { readDemoCa } from './demoCa';

const APP_URL = process.env.KEYTURN_DEMO_APP_URL ?? 'http://127.0.0.1:7071';
const EVENTGRID_URL = process.env.KEYTURN_DEMO_EVENTGRID_URL ?? 'https://127.0.0.1:8444';
const COUNT = Number(process.env.KEYTURN_DEMO_ITEMS ?? 300);

const api = async (method: string, path: string, body?: unknown) => {
  const res = await requestJson(`${APP_URL}/api/${path}`, { method, ...(body !== undefined ? { body } : {}), timeoutMs: 120_000 });
  const json = res.text ? JSON.parse(res.text) : {};
  if (res.status >= 400) throw new Error(`${method} /api/${path} answered ${res.status} ${json.code ?? ''}: ${json.detail ?? res.text}`);
  return json;
};

async function inParallel<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

const bar = (done: number, total: number) => {
  const width = 30;
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
};

async function waitForJob(jobId: string, label: string) {
  for (;;) {
    const { job } = await api('GET', `jobs/${jobId}`);
    process.stdout.write(`\r   ${label} ${bar(job.processed, job.total)} ${job.ratePerSecond}/s, eta ${job.etaSeconds ?? '?'} s, batches ${job.batches}   `);
    if (job.state === 'completed' || job.state === 'failed') {
      process.stdout.write('\n');
      if (job.state === 'failed') throw new Error(`job ${jobId} failed: ${JSON.stringify(job.lastError)}`);
      return job;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A webhook the local Event Grid delivers Keyturn's re-entry events to (it answers the validation handshake). */
async function reentryListener(ca: string) {
  const events: { id: string; subject: string; data: { owner: string; itemIds: string[] } }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '[]') as { eventType: string; data: { validationCode?: string } }[];
      const validation = body.find((e) => e.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent');
      res.writeHead(200, { 'content-type': 'application/json' });
      if (validation) return res.end(JSON.stringify({ validationResponse: validation.data.validationCode }));
      events.push(...(body as never[]));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  const sub = await requestJson(`${EVENTGRID_URL}/management/subscriptions`, {
    method: 'POST',
    ca,
    body: { name: `demo-key-set-${process.pid}`, topic: '*', endpoint: url, includedEventTypes: ['Keyturn.CredentialReentryRequired'] },
  });
  if (sub.status >= 300) throw new Error(`Subscribing to the local Event Grid failed: ${sub.status}`);
  return { events, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function main(): Promise<void> {
  const ca = readDemoCa();
  const listener = await reentryListener(ca);
  const set = `demo-${randomBytes(3).toString('hex')}`;
  try {
    const { keySet } = await api('PUT', `keysets/${set}`, {});
    console.log(`1. key set '${set}' created; KEK ${keySet.kek.name} (Keyturn's vault), primary ${keySet.primaryKeyId}`);
    const ids = Array.from({ length: COUNT }, (_, i) => `connector-${String(i).padStart(4, '0')}`);
    await inParallel(ids, 16, async (id) => void (await api('PUT', `keysets/${set}/items/${id}`, { value: randomBytes(24).toString('base64'), owner: `team-${Number(id.slice(-4)) % 5}@example.com` })));
    console.log(`2. ${COUNT} credentials stored (only ciphertexts reach Cosmos DB)`);
    const added = (await api('POST', `keysets/${set}/keys`, {})).keySet;
    console.log(`3. key added: primary is now ${added.primaryKeyId}; old items keep ${keySet.primaryKeyId} until re-encrypted`);
    const { jobId } = await api('POST', `keysets/${set}/reencrypt`, { batchSize: 25 });
    const job = await waitForJob(jobId, 're-encrypting');
    const counts = (await api('GET', `keysets/${set}`)).keySet.keys.map((k: { keyId: string; items: number }) => `${k.keyId}: ${k.items}`).join(', ');
    console.log(`4. re-encrypted ${job.processed} items in ${job.batches} batches (items per key: ${counts})`);

    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const sha = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    const requested = (await api('POST', `keysets/${set}/exports`, { recipientPublicKey: pem, reason: 'demo backup', requestedBy: 'alice@example.com' })).export;
    const exported = (await api('POST', `keysets/${set}/exports/${requested.exportId}/approve`, { publicKeySha256: sha, approvedBy: 'bob@example.com' })).export;
    console.log(`5. export requested by alice, approved by bob: ${exported.blobName} (sha256 ${exported.checksum.slice(0, 16)}…)`);

    const abandoned = await api('POST', `keysets/${set}/abandon`, { confirm: set, reason: 'demo: pretend the KEK is lost' });
    await waitForJob(abandoned.jobId, 'abandoning   ');
    // One event per owner, listing the owner's item ids (an owner with very many items gets several).
    const announced = () => new Set(listener.events.flatMap((e) => e.data.itemIds));
    for (let i = 0; i < 50 && announced().size < COUNT; i++) await new Promise((r) => setTimeout(r, 200));
    const unique = [...new Map(listener.events.map((e) => [e.id, e])).values()];
    const owners = new Map<string, number>();
    for (const e of unique) owners.set(e.data.owner, (owners.get(e.data.owner) ?? 0) + e.data.itemIds.length);
    console.log(`6. abandoned: ${unique.length} Keyturn.CredentialReentryRequired events (one per owner) for ${announced().size} items:`);
    for (const [owner, n] of [...owners].sort()) console.log(`     ${owner}: ${n} item(s) to re-enter`);
    const sample = unique[0];
    if (sample) console.log(`   e.g. ${sample.subject} (event id ${sample.id}): ${sample.data.itemIds.slice(0, 3).join(', ')}, …`);
  } finally {
    await listener.close();
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
