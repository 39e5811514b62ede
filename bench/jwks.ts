/**
 * JWKS serving vs token signing. Publication reads the key set document (Cosmos) and
 * never calls Key Vault; signing a token does, once per token. The Key Vault column
 * shows that directly, from the emulator's own request log.
 */
import { CONCURRENCY, type LoadResult, expectStatus, fmt, httpClient, load, loadTable, percentile, rate, ratio } from './lib';
import { startApp } from './stack';

const WARM_OPS = 2000;
const TOKEN_OPS = 300;
const PHASE_MAX_MS = 20_000;

export async function run(): Promise<void> {
  const app = await startApp();
  const http = httpClient();
  try {
    const jwksUrl = `${app.url}/api/.well-known/jwks.json`;
    // Runs a phase and notes, per operation, the Key Vault requests it caused and the
    // functions host's CPU time (what bounds throughput here, with 2 cores shared).
    const phase = async (label: string, ops: number, op: () => Promise<unknown>): Promise<LoadResult> => {
      const kvBefore = app.kvRequests.length;
      const cpuBefore = app.hostCpuMs();
      const result = await load(label, { ops, maxMs: PHASE_MAX_MS }, op);
      result.extra = [fmt((app.kvRequests.length - kvBefore) / result.ops), fmt((app.hostCpuMs() - cpuBefore) / result.ops)];
      return result;
    };

    // Cold: the first wave after the host started, one request per client connection;
    // they find no key set and create the signing keys in Key Vault. Failures here are
    // reported, not fatal: a cold start racing itself is one of the things to see.
    const coldFailures: string[] = [];
    const cold = await phase('cold 200 (first wave)', CONCURRENCY, async () => {
      const reply = await http.call('GET', jwksUrl);
      if (reply.status !== 200) coldFailures.push(`${reply.status} ${reply.text.slice(0, 240)}`);
    });
    const etag = String(expectStatus(await http.call('GET', jwksUrl), 200, 'JWKS').headers.etag);
    const warm = await phase('warm 200', WARM_OPS, async () => expectStatus(await http.call('GET', jwksUrl), 200, 'JWKS'));
    const notModified = await phase('304 If-None-Match', WARM_OPS, async () =>
      expectStatus(await http.call('GET', jwksUrl, { headers: { 'if-none-match': etag } }), 304, 'conditional JWKS'),
    );
    const body = { claims: { sub: 'svc-bench', aud: 'api://bench' }, expiresInSeconds: 600 };
    expectStatus(await http.call('POST', `${app.url}/api/tokens`, { body }), 200, 'token'); // first signature warms the SDK client
    const tokens = await phase('POST /api/tokens (sign)', TOKEN_OPS, async () =>
      expectStatus(await http.call('POST', `${app.url}/api/tokens`, { body }), 200, 'token'),
    );

    console.log(`jwks: GET /api/.well-known/jwks.json vs POST /api/tokens, ${CONCURRENCY} concurrent, keep-alive`);
    console.log(loadTable([cold, warm, notModified, tokens], ['KV req/op', 'host CPU ms/op']));
    if (coldFailures.length > 0) console.log(`  note: ${coldFailures.length} of ${cold.ops} cold requests failed, e.g. ${coldFailures[0]}`);
    console.log(
      `  ratios: JWKS warm 200 / token signing = ${ratio(rate(warm), rate(tokens))}, ` +
        `304 / warm 200 = ${ratio(rate(notModified), rate(warm))}, cold p50 / warm p50 = ${ratio(p50(cold), p50(warm))}`,
    );
  } finally {
    http.close();
    await app.close();
  }
}

const p50 = (r: LoadResult) => percentile(r.latenciesMs, 50);
