/**
 * JWKS serving vs token signing. Publication reads the key set document (Cosmos) and
 * never calls Key Vault; signing a token does, once per token. The Key Vault column
 * shows that directly, from the emulator's own request log.
 */
import { generateKeyPairSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type JSONWebKeySet, createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import { CONCURRENCY, type LoadResult, type Reply, expectStatus, fmt, httpClient, load, loadTable, percentile, rate, ratio, scaled, sleep } from './lib';
import { startApp } from './stack';

const COLD_OPS = scaled(500, 10);
const WARM_OPS = scaled(2000, 20);
const TOKEN_OPS = scaled(300, 5);
const VERIFY_OPS = scaled(2000, 20);
const PHASE_MAX_MS = scaled(20_000, 2000);
/** Alternating rounds of the JWKS and its static baseline. */
const ROUNDS = 4;

/** One phase's figures from several rounds of it. */
function combined(results: LoadResult[]): LoadResult {
  const sum = (f: (r: LoadResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const extra = results[0]!.extra?.map((_, i) => fmt(sum((r) => Number(r.extra![i]) * r.ops) / sum((r) => r.ops)));
  return {
    label: results[0]!.label,
    ops: sum((r) => r.ops),
    elapsedMs: sum((r) => r.elapsedMs),
    latenciesMs: results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b),
    ...(extra ? { extra } : {}),
  };
}
const KEYS_READY_MAX_MS = 60_000;

/** A static JSON function with the JWKS's headers and a body of the same shape: the host's own cost per request. */
function staticFunction(): string {
  const keys = [0, 1].map((i) => ({ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: `static-${i}`, use: 'sig', alg: 'RS256' }));
  const body = JSON.stringify({ keys });
  return (
    "require('@azure/functions').app.http('benchStaticJson', { route: 'bench/static.json', methods: ['GET'], authLevel: 'anonymous', " +
    `handler: async () => ({ status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' }, body: ${JSON.stringify(body)} }) });`
  );
}

export async function run(): Promise<void> {
  const app = await startApp({ extraFunction: staticFunction() });
  const http = httpClient();
  const fresh = httpClient({ keepAlive: false });
  try {
    const jwksUrl = `${app.url}/api/.well-known/jwks.json`;
    // Runs a phase and notes, per operation, the Key Vault requests it caused and the
    // functions host's CPU time (on this stack the host, not Key Vault, is the busy one).
    const phase = async (label: string, ops: number, op: () => Promise<unknown>): Promise<LoadResult> => {
      const kvBefore = app.kvRequests.length;
      const cpuBefore = app.hostCpuMs();
      const result = await load(label, { ops, maxMs: PHASE_MAX_MS }, op);
      result.extra = [fmt((app.kvRequests.length - kvBefore) / result.ops), fmt((app.hostCpuMs() - cpuBefore) / result.ops)];
      return result;
    };

    // A fresh host has no signing keys until they are created in Key Vault; until then
    // the JWKS may answer 503 (Retry-After). How long that lasts is a figure of its own.
    const started = performance.now();
    const notReady = new Map<number, number>();
    let first: Reply;
    for (;;) {
      first = await http.call('GET', jwksUrl);
      if (first.status === 200) break;
      notReady.set(first.status, (notReady.get(first.status) ?? 0) + 1);
      if (performance.now() - started > KEYS_READY_MAX_MS) throw new Error(`no 200 from the JWKS within ${KEYS_READY_MAX_MS / 1000} s: ${first.status} ${first.text.slice(0, 200)}`);
      await sleep(100);
    }
    const readyMs = performance.now() - started;
    const kvUntilReady = app.kvRequests.length;
    const etag = String(first.headers.etag);

    const cold = await phase('200, new connection each', COLD_OPS, async () => expectStatus(await fresh.call('GET', jwksUrl), 200, 'JWKS'));
    // The JWKS and its baseline in alternating rounds after a warm-up of both, so the host's
    // start-up work (the first keys, JIT) and the shared machine's swings hit both alike.
    const getJwks = async () => expectStatus(await http.call('GET', jwksUrl), 200, 'JWKS');
    const getStatic = async () => expectStatus(await http.call('GET', `${app.url}/api/bench/static.json`), 200, 'static JSON');
    for (let i = 0; i < WARM_OPS / 10; i++) await Promise.all([getJwks(), getStatic()]);
    const rounds = { warm: [] as LoadResult[], staticJson: [] as LoadResult[] };
    for (let r = 0; r < ROUNDS; r++) {
      const pair = [
        async () => rounds.warm.push(await phase('200, keep-alive', WARM_OPS / ROUNDS, getJwks)),
        async () => rounds.staticJson.push(await phase('static JSON function (baseline)', WARM_OPS / ROUNDS, getStatic)),
      ];
      for (const run of r % 2 ? pair.reverse() : pair) await run();
    }
    const warm = combined(rounds.warm);
    const staticJson = combined(rounds.staticJson);
    const notModified = await phase('304, If-None-Match', WARM_OPS, async () =>
      expectStatus(await http.call('GET', jwksUrl, { headers: { 'if-none-match': etag } }), 304, 'conditional JWKS'),
    );
    const body = { claims: { sub: 'svc-bench', aud: 'api://bench' }, expiresInSeconds: 600 };
    expectStatus(await http.call('POST', `${app.url}/api/tokens`, { body }), 200, 'token'); // the first signature fetches the key once
    const tokens = await phase('POST /api/tokens (sign)', TOKEN_OPS, async () =>
      expectStatus(await http.call('POST', `${app.url}/api/tokens`, { body }), 200, 'token'),
    );

    // A relying party: jose fetching the JWKS (cached after the first fetch) vs the same keys in memory.
    const minted = await Promise.all(
      Array.from({ length: 20 }, async () => JSON.parse(expectStatus(await http.call('POST', `${app.url}/api/tokens`, { body }), 200, 'token').text).token as string),
    );
    const localSet = createLocalJWKSet(JSON.parse(first.text) as JSONWebKeySet);
    const remoteSet = createRemoteJWKSet(new URL(jwksUrl));
    const verifyOptions = { issuer: app.url, audience: 'api://bench' };
    await jwtVerify(minted[0]!, remoteSet, verifyOptions); // the one fetch, outside the timing
    // Both warmed up first (JIT, imported keys), so the first measured side is not penalised.
    for (let i = 0; i < 500; i++) {
      await jwtVerify(minted[i % minted.length]!, remoteSet, verifyOptions);
      await jwtVerify(minted[i % minted.length]!, localSet, verifyOptions);
    }
    const remote = await load('jose createRemoteJWKSet + jwtVerify', { ops: VERIFY_OPS, maxMs: PHASE_MAX_MS, concurrency: 1 }, (i) =>
      jwtVerify(minted[i % minted.length]!, remoteSet, verifyOptions),
    );
    const local = await load('jose createLocalJWKSet + jwtVerify (baseline)', { ops: VERIFY_OPS, maxMs: PHASE_MAX_MS, concurrency: 1 }, (i) =>
      jwtVerify(minted[i % minted.length]!, localSet, verifyOptions),
    );

    const before = [...notReady].map(([status, n]) => `${n} x ${status}`).join(', ') || 'none';
    console.log(`jwks: GET /api/.well-known/jwks.json vs POST /api/tokens, ${CONCURRENCY} concurrent`);
    console.log(`  fresh host: first 200 after ${fmt(readyMs / 1000, 2)} s (answers before it: ${before}; Key Vault requests until then: ${kvUntilReady})`);
    console.log(loadTable([cold, warm, staticJson, notModified, tokens], ['KV req/op', 'host CPU ms/op']));
    console.log(loadTable([remote, local]));
    console.log(
      `  vs baselines: JWKS 200 keep-alive / static JSON function = ${ratio(rate(warm), rate(staticJson))} (goal ≥ 0.9x); ` +
        `relying party remote / local JWKS = ${ratio(rate(remote), rate(local))} (goal ≥ 0.9x)`,
    );
    console.log(
      `  ratios: JWKS 200 keep-alive / token signing = ${ratio(rate(warm), rate(tokens))}, 304 / 200 = ${ratio(rate(notModified), rate(warm))}, ` +
        `p50 new connection / keep-alive = ${ratio(p50(cold), p50(warm))}`,
    );
  } finally {
    http.close();
    fresh.close();
    await app.close();
  }
}

const p50 = (r: LoadResult) => percentile(r.latenciesMs, 50);
