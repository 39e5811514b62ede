/**
 * The benchmarks cannot rot: `npm run bench` runs every one of them at a tiny size
 * (KEYTURN_BENCH_SCALE=tiny) and each prints its figures and the line with its ratios.
 * No figure is asserted: at this size, on a shared machine, they mean nothing.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/stack';

/** Each benchmark's heading and the ratio line(s) it must print (the figures beside their baselines). */
const EXPECTED: Record<string, RegExp[]> = {
  coldstart: [/^coldstart: /m, /ratios: module load Keyturn \/ bare = [\d.]+x .* first response Keyturn \/ bare = [\d.]+x/],
  jwks: [/^jwks: /m, /vs baselines: JWKS 200 keep-alive \/ static JSON function = [\d.]+x .* relying party remote \/ local JWKS = [\d.]+x/],
  renewal: [/^renewal: /m, /Cosmos DB requests per renewal ≈ [\d.]+ .* ratio [\d.]+x/, /ratios: .*Key Vault requests Keyturn \/ minimal = [\d.]+x/],
  duplicates: [/^duplicates: /m, /vs baseline: webhook duplicates \/ bare Cosmos 409s = [\d.]+x/],
  listing: [/^listing: /m, /ratios: page p50 with \d+ callers \/ 1 caller = [\d.]+x/],
  tenantKeys: [/^tenantKeys: /m, /ratios: unprotect throughput app \/ bare = [\d.]+x/],
  keyvault: [/^keyvault: /m, /ratios: RS256 \/ ES256 throughput = [\d.]+x/],
  keyset: [/^keyset: /m, /ratios: re-encryption \/ bare Cosmos DB writes = [\d.]+x .* unwraps per data key = [\d.]+/],
};

function runBench(): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'bench', 'run.js')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KEYTURN_BENCH_SCALE: 'tiny' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

describe('When every benchmark runs at a tiny size', () => {
  let result: Awaited<ReturnType<typeof runBench>>;

  beforeAll(async () => {
    result = await runBench();
    // Eight benchmarks with their stacks: ≈ 40 s on an idle machine, over 110 s at load 10.
  }, 300_000);

  test('then the run ends without an error', () => {
    if (result.code !== 0) throw new Error(`npm run bench failed (${result.code}): ${result.err.slice(-2000)}\n${result.out.slice(-2000)}`);
    expect(result.out).toMatch(new RegExp(`^${Object.keys(EXPECTED).length} benchmark\\(s\\) in \\d+ s`, 'm'));
  });

  test.each(Object.keys(EXPECTED))('then %s prints its figures and its ratio line', (name) => {
    for (const line of EXPECTED[name]!) expect(result.out).toMatch(line);
  });

  test('then each benchmark reports the load average around it', () => {
    expect(result.out.match(/load average [\d.]+ before, [\d.]+ after/g)).toHaveLength(Object.keys(EXPECTED).length);
  });
});
