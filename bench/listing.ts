/**
 * `GET /api/credentials` over 1,000 managed secrets: the listing walked page by page
 * (default page, top=100), by one caller and by 6 at once. Per page: time, bytes, and the
 * Key Vault and Cosmos DB requests the app made for it (from the emulator's request log,
 * and a count of the in-process Cosmos DB server's requests).
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expectStatus, fmt, httpClient, percentile, scaled, sleep, table } from './lib';
import { countCosmosRequests, keyVaultClientOptions, staticCredential, startApp } from './stack';

const SECRETS = scaled(1000, 30);
const TOP = scaled(100, 10);
const CONCURRENT = 6;
const SEED_AT_ONCE = 8;
const MAX_WALK_MS = 120_000;
const DAY_MS = 86_400_000;

interface Walk {
  pageMs: number[];
  pageBytes: number[];
  totalMs: number;
  names: string[];
}

export async function run(): Promise<void> {
  const app = await startApp();
  const cosmos = countCosmosRequests(app);
  const http = httpClient({ maxSockets: CONCURRENT });
  try {
    const secrets = new SecretClient(app.stack.keyVault.url, staticCredential, keyVaultClientOptions(app.ca));
    await secrets.getSecret('bench-warm-up').catch(() => undefined);
    // Far from expiry: nothing renews while the listing is measured.
    const expiresOn = new Date(app.stack.keyVault.clock.now().getTime() + 300 * DAY_MS);
    const names = Array.from({ length: SECRETS }, (_, i) => `bench-list-${String(i).padStart(4, '0')}`);
    const t0 = performance.now();
    for (let i = 0; i < names.length; i += SEED_AT_ONCE) {
      await Promise.all(
        names.slice(i, i + SEED_AT_ONCE).map((name) => secrets.setSecret(name, randomBytes(32).toString('base64'), { tags: { 'keyturn-provider': 'symmetric' }, expiresOn })),
      );
    }
    const seededS = (performance.now() - t0) / 1000;
    await sleep(1000); // the seeding's SecretNewVersionCreated events, handled before measuring

    const walk = async (): Promise<Walk> => {
      const w: Walk = { pageMs: [], pageBytes: [], totalMs: 0, names: [] };
      const started = performance.now();
      let token: string | undefined;
      do {
        if (performance.now() - started > MAX_WALK_MS) throw new Error(`the listing took over ${MAX_WALK_MS / 1000} s`);
        const t = performance.now();
        const reply = expectStatus(await http.call('GET', `${app.url}/api/credentials?top=${TOP}${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`), 200, 'GET /api/credentials');
        w.pageMs.push(performance.now() - t);
        w.pageBytes.push(Buffer.byteLength(reply.text));
        const body = JSON.parse(reply.text) as { credentials: { name: string }[]; continuationToken?: string };
        w.names.push(...body.credentials.map((c) => c.name).filter((n) => n.startsWith('bench-list-')));
        token = body.continuationToken;
      } while (token);
      w.totalMs = performance.now() - started;
      // Not a figure: a listing that misses or repeats secrets measures the wrong thing.
      if (w.names.length !== SECRETS || new Set(w.names).size !== SECRETS) throw new Error(`the walk returned ${w.names.length} names (${new Set(w.names).size} distinct), expected ${SECRETS}`);
      return w;
    };
    const measured = async (label: string, walkers: number) => {
      const kv0 = app.kvRequests.length;
      const cosmos0 = cosmos.requests.length;
      const walks = await Promise.all(Array.from({ length: walkers }, walk));
      const pages = walks.reduce((n, w) => n + w.pageMs.length, 0);
      const kv = app.kvRequests.slice(kv0).filter((r) => r.path.startsWith('/secrets'));
      const kvList = kv.filter((r) => r.method === 'GET' && r.path === '/secrets').length;
      const ms = walks.flatMap((w) => w.pageMs).sort((a, b) => a - b);
      const totals = walks.map((w) => w.totalMs).sort((a, b) => a - b);
      return {
        pageP50: percentile(ms, 50),
        walkP50: percentile(totals, 50),
        row: [
          label,
          String(pages),
          fmt(percentile(ms, 50)),
          fmt(percentile(ms, 95)),
          fmt(percentile(totals, 50) / 1000, 2),
          fmt(totals.at(-1)! / 1000, 2),
          fmt(walks[0]!.pageBytes.reduce((a, b) => a + b, 0) / walks[0]!.pageBytes.length / 1024, 1),
          `${fmt(kv.length / pages, 1)} (${fmt(kvList / pages, 1)} list)`,
          fmt((cosmos.requests.length - cosmos0) / pages, 1),
        ],
      };
    };
    const single = await measured('1 caller', 1);
    const concurrent = await measured(`${CONCURRENT} callers at once`, CONCURRENT);

    console.log(`listing: ${SECRETS} managed secrets (seeded in ${fmt(seededS, 1)} s), GET /api/credentials?top=${TOP} walked to the end`);
    console.log(
      table(['', 'pages', 'page p50 ms', 'page p95 ms', 'walk p50 s', 'walk max s', 'KB/page', 'KV req/page', 'Cosmos req/page'], [single.row, concurrent.row]),
    );
    console.log('  KV req/page: list calls (25 secrets each) plus one read per managed secret for its current version (Key Vault lists no versions);');
    console.log('  Cosmos req/page: every request the Cosmos DB server saw (the page\'s one rotation query, plus any query plan the SDK asks for).');
    // The baseline is the listing's own single caller: how much concurrent callers slow each other down.
    console.log(
      `  ratios: page p50 with ${CONCURRENT} callers / 1 caller = ${fmt(concurrent.pageP50 / single.pageP50)}x; ` +
        `whole walk p50 ${CONCURRENT} callers / 1 caller = ${fmt(concurrent.walkP50 / single.walkP50)}x`,
    );
  } finally {
    cosmos.restore();
    http.close();
    await app.close();
  }
}
