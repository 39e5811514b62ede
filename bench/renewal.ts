/**
 * Credential renewal end to end: seed N managed secrets expiring in 10 days (inside the
 * 30-day window, so Key Vault's SecretNearExpiry fires at once), then time until the
 * app reports every one renewed (rotation state `grace`: new version current, notified).
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expectStatus, fmt, httpClient, scaled, sleep, table } from './lib';
import { countCosmosRequests, keyVaultClientOptions, staticCredential, startApp } from './stack';

const SECRETS = scaled(20, 2);
const POLL_MS = 250;
const MAX_MS = 90_000;
const DAY_MS = 86_400_000;

interface Row {
  name: string;
  rotation: { state: string; lastError: string | null } | null;
}

export async function run(): Promise<void> {
  const app = await startApp();
  const http = httpClient({ maxSockets: 1 });
  try {
    // The bench's own Key Vault requests (the seeding), counted to leave them out below.
    let ownRequests = 0;
    const secrets = new SecretClient(app.stack.keyVault.url, staticCredential, {
      ...keyVaultClientOptions(app.ca),
      additionalPolicies: [{ position: 'perRetry', policy: { name: 'benchCount', sendRequest: (req, next) => (ownRequests++, next(req)) } }],
    });
    const names = Array.from({ length: SECRETS }, (_, i) => `bench-renew-${String(i).padStart(2, '0')}`);
    const expiresOn = new Date(app.stack.keyVault.clock.now().getTime() + 10 * DAY_MS);

    // One request first, so the seeding does not start with the SDK's auth challenge racing
    // itself; and the host's own start-up work (creating signing keys) out of the way.
    await secrets.getSecret('bench-warm-up').catch(() => undefined);
    await quiet(app.kvRequests);
    ownRequests = 0;

    const kvStart = app.kvRequests.length;
    const cosmos = countCosmosRequests(app);
    const t0 = performance.now();
    // Seeded together, so the renewals overlap as they would after a bulk import.
    await Promise.all(
      names.map((name) => secrets.setSecret(name, randomBytes(32).toString('base64'), { tags: { 'keyturn-provider': 'symmetric' }, expiresOn })),
    );
    const seededMs = performance.now() - t0;

    let polls = 0;
    let firstMs = NaN;
    let allMs = NaN;
    while (Number.isNaN(allMs)) {
      if (performance.now() - t0 > MAX_MS) throw new Error(`not every secret was renewed within ${MAX_MS / 1000} s`);
      const reply = expectStatus(await http.call('GET', `${app.url}/api/credentials`), 200, 'GET /api/credentials');
      polls++;
      const rows = (JSON.parse(reply.text) as { credentials: Row[] }).credentials.filter((r) => names.includes(r.name));
      const failed = rows.find((r) => r.rotation?.state === 'failed');
      if (failed) throw new Error(`renewal of ${failed.name} failed: ${failed.rotation?.lastError}`);
      const renewed = rows.filter((r) => r.rotation?.state === 'grace').length;
      const now = performance.now() - t0;
      if (renewed > 0 && Number.isNaN(firstMs)) firstMs = now;
      if (renewed === SECRETS) allMs = now;
      else await sleep(POLL_MS);
    }

    // Late work (e.g. the events for the promoted versions) still belongs to the renewals.
    await quiet(app.kvRequests);
    const kvEnd = app.kvRequests.length;
    const cosmosInWindow = cosmos.requests.length;
    const cosmosKinds = cosmosBreakdown(cosmos.requests.slice(0, cosmosInWindow));
    // What one poll costs in Cosmos DB requests (its rotation query), measured now that the renewals are done.
    const pollStart = cosmos.requests.length;
    expectStatus(await http.call('GET', `${app.url}/api/credentials`), 200, 'GET /api/credentials');
    const cosmosPerPoll = cosmos.requests.length - pollStart;
    cosmos.restore();
    const cosmosPerRenewal = (cosmosInWindow - polls * cosmosPerPoll) / SECRETS;
    // The step kernel's floor until grace: the rotation's creation, then a claim and a record for each of create, verify, promote, notify.
    const cosmosMinimum = 1 + 2 * 4;
    // Renewals touch secrets only (anything on /keys is the signing timer's). Take out the
    // seeding (all PUTs) and the polls: each costs the list pages plus one getSecret per
    // managed secret (all GETs).
    const window = app.kvRequests.slice(kvStart, kvEnd).filter((r) => r.path.startsWith('/secrets'));
    const listPages = window.filter((r) => r.method === 'GET' && r.path === '/secrets').length;
    const pollRequests = listPages + polls * SECRETS;
    const byMethod = new Map<string, number>();
    for (const r of window) byMethod.set(r.method, (byMethod.get(r.method) ?? 0) + 1);
    byMethod.set('PUT', (byMethod.get('PUT') ?? 0) - ownRequests);
    byMethod.set('GET', (byMethod.get('GET') ?? 0) - pollRequests);
    const perRenewal = (window.length - ownRequests - pollRequests) / SECRETS;
    const breakdown = [...byMethod].map(([method, n]) => `${method} ${fmt(n / SECRETS, 1)}`).join(', ');

    console.log(`renewal: ${SECRETS} managed secrets (symmetric) expiring in 10 days, seeded at once; polled every ${POLL_MS} ms`);
    console.log(
      table(
        ['', 'seconds'],
        [
          [`seeded (${SECRETS} x setSecret)`, fmt(seededMs / 1000, 2)],
          ['first renewed (grace)', fmt(firstMs / 1000, 2)],
          ['all renewed (grace)', fmt(allMs / 1000, 2)],
        ],
      ),
    );
    console.log(
      `  renewals/s: ${fmt((SECRETS * 1000) / allMs)}; Key Vault requests per renewal ≈ ${fmt(perRenewal, 1)} (${breakdown}; ` +
        `${window.length} in all, less ${ownRequests} seeding and ${pollRequests} for ${polls} polls)`,
    );
    console.log(
      `  Cosmos DB requests per renewal ≈ ${fmt(cosmosPerRenewal, 1)} (${cosmosInWindow} in all: ${cosmosKinds}; less ${polls} polls x ${cosmosPerPoll}); ` +
        `the step kernel's minimum ${cosmosMinimum} (create the rotation, then a claim and a record per step until grace); ratio ${fmt(cosmosPerRenewal / cosmosMinimum)}x`,
    );
    // Baseline: the minimal create → verify → promote → retire sequence, the same SDK calls made directly.
    const bare = await bareSequence(secrets, app.kvRequests, expiresOn);
    console.log(
      `  baseline: the minimal sequence made directly with SecretClient = ${fmt(bare.perRenewal, 1)} Key Vault requests per renewal ` +
        `(get current, set pending, get pending, set new version, disable pending, disable old) in ${fmt(bare.ms / SECRETS, 1)} ms each`,
    );
    console.log(`  ratios: all / first renewed = ${fmt(allMs / firstMs)}x; Key Vault requests Keyturn / minimal = ${fmt(perRenewal / bare.perRenewal)}x (goal ≤ 1.25x)`);
  } finally {
    http.close();
    await app.close();
  }
}

/** The fewest Key Vault calls a staged renewal can make, timed and counted from the emulator's log. */
async function bareSequence(secrets: SecretClient, requests: { method: string; path: string }[], expiresOn: Date) {
  const names = Array.from({ length: SECRETS }, (_, i) => `bench-bare-${String(i).padStart(2, '0')}`);
  const old = new Map<string, string>();
  // Far from expiry, so no SecretNearExpiry makes the app read these (its reads would count here).
  const far = new Date(expiresOn.getTime() + 400 * DAY_MS);
  for (const name of names) old.set(name, (await secrets.setSecret(name, randomBytes(32).toString('base64'), { expiresOn: far })).properties.version!);
  const start = requests.length;
  const t0 = performance.now();
  for (const name of names) {
    await secrets.getSecret(name);
    const pending = await secrets.setSecret(`${name}--pending`, randomBytes(32).toString('base64'), { tags: { 'keyturn-stage': 'pending' } });
    const value = (await secrets.getSecret(pending.name, { version: pending.properties.version! })).value!;
    await secrets.setSecret(name, value, { expiresOn: new Date(far.getTime() + 365 * DAY_MS) });
    await secrets.updateSecretProperties(pending.name, pending.properties.version!, { enabled: false });
    await secrets.updateSecretProperties(name, old.get(name)!, { enabled: false });
  }
  const ms = performance.now() - t0;
  await quiet(requests);
  const window = requests.slice(start).filter((r) => r.path.startsWith('/secrets/bench-bare-'));
  return { perRenewal: window.length / SECRETS, ms };
}

/** Cosmos DB requests by kind: document reads, creates, replaces (claims and records), queries, anything else. */
function cosmosBreakdown(requests: { method: string; url: string; query: boolean }[]): string {
  const kinds = new Map<string, number>();
  for (const r of requests) {
    const doc = /\/docs(\/|$)/.test(r.url);
    const kind = r.query ? 'query' : !doc ? `${r.method} other` : r.method === 'GET' ? 'read' : r.method === 'POST' ? 'create' : r.method === 'PUT' ? 'replace' : `${r.method} doc`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${k} ${n}`).join(', ');
}

/** Waits until no Key Vault request has been logged for a second (at most 5 s). */
async function quiet(requests: unknown[]): Promise<void> {
  for (let seen = -1, i = 0; seen !== requests.length && i < 5; i++) {
    seen = requests.length;
    await sleep(1000);
  }
}
