/**
 * Redelivered events: Event Grid delivers at least once, so an event already handled
 * comes again. A flood of such events through the webhook vs the floor for noticing a
 * duplicate: a Cosmos DB create of an existing id answered 409, measured bare against
 * the same Cosmos server (goal ≥ 0.8x: at most one round trip per duplicate).
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expectStatus, fmt, httpClient, load, loadTable, rate, ratio, scaled, sleep } from './lib';
import { cosmosClient, keyVaultClientOptions, secretNearExpiry, staticCredential, startApp } from './stack';

const SECRETS = scaled(10, 2);
const OPS = scaled(1000, 20);
const MAX_MS = scaled(20_000, 2000);
const DAY_MS = 86_400_000;

export async function run(): Promise<void> {
  const app = await startApp();
  const http = httpClient();
  try {
    const { keyVault } = app.stack;
    const secrets = new SecretClient(keyVault.url, staticCredential, keyVaultClientOptions(app.ca));
    const expiresOn = new Date(keyVault.clock.now().getTime() + 10 * DAY_MS);
    const names = Array.from({ length: SECRETS }, (_, i) => `bench-dup-${i}`);
    const versions = await Promise.all(
      names.map(async (name) => (await secrets.setSecret(name, randomBytes(32).toString('base64'), { tags: { 'keyturn-provider': 'symmetric' }, expiresOn })).properties.version!),
    );
    // Handled: every secret renewed (the emulator's SecretNearExpiry went through at once).
    const t0 = performance.now();
    for (;;) {
      const rows = JSON.parse(expectStatus(await http.call('GET', `${app.url}/api/credentials`), 200, 'credentials').text).credentials as { name: string; rotation: { state: string } | null }[];
      if (rows.filter((r) => names.includes(r.name) && r.rotation?.state === 'grace').length === SECRETS) break;
      if (performance.now() - t0 > 60_000) throw new Error('the renewals did not reach grace within 60 s');
      await sleep(250);
    }
    const event = (i: number) => [secretNearExpiry(app, names[i % SECRETS]!, versions[i % SECRETS]!, expiresOn)];
    const kvBefore = app.kvRequests.length;
    const flood = await load('redelivered events via the webhook', { ops: OPS, maxMs: MAX_MS }, async (i) =>
      expectStatus(
        await http.call('POST', `${app.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, { body: event(i), headers: { 'aeg-event-type': 'Notification' } }),
        202,
        'webhook',
      ),
    );
    flood.extra = [fmt((app.kvRequests.length - kvBefore) / flood.ops)];

    // The floor: a create of an existing id, answered 409, on the same Cosmos server.
    const cosmos = cosmosClient(app);
    const { database } = await cosmos.databases.createIfNotExists({ id: 'bench-duplicates' });
    const { container } = await database.containers.createIfNotExists({ id: 'dups', partitionKey: { paths: ['/pk'] } });
    await container.items.create({ id: 'seen', pk: 'p' });
    const bare = await load('Cosmos create of an existing id (409), bare', { ops: OPS, maxMs: MAX_MS }, async () => {
      const status = await container.items.create({ id: 'seen', pk: 'p' }).then(
        () => 201,
        (e: { code?: number }) => e.code,
      );
      if (status !== 409) throw new Error(`a duplicate create answered ${status}, expected 409`);
    });
    bare.extra = ['-'];
    cosmos.dispose();

    console.log(`duplicates: ${OPS} redelivered SecretNearExpiry events (already handled) for ${SECRETS} renewed secrets, one per delivery, 8 concurrent`);
    console.log(loadTable([flood, bare], ['KV req/op']));
    console.log(`  vs baseline: webhook duplicates / bare Cosmos 409s = ${ratio(rate(flood), rate(bare))} (goal ≥ 0.8x)`);
  } finally {
    http.close();
    await app.close();
  }
}
