/**
 * `npm run bench` runs every benchmark; `npm run bench -- jwks renewal` runs the named ones.
 * Each starts what it needs on ephemeral ports, in memory, and stops it afterwards.
 * Benchmarks print figures; they never fail on a figure, only when something is broken.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as coldstart from './coldstart';
import * as duplicates from './duplicates';
import * as jwks from './jwks';
import * as keyvault from './keyvault';
import * as keyset from './keyset';
import * as listing from './listing';
import * as renewal from './renewal';
import * as tenantKeys from './tenantKeys';
import { running } from './stack';

const BENCHMARKS: Record<string, () => Promise<unknown>> = {
  coldstart: coldstart.run,
  jwks: jwks.run,
  renewal: renewal.run,
  duplicates: duplicates.run,
  keyvault: keyvault.run,
  listing: listing.run,
  tenantKeys: tenantKeys.run,
  keyset: keyset.run,
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHMARKS).join(', ')}`);
  const names = asked.length > 0 ? asked : Object.keys(BENCHMARKS);
  // Figures from a busy machine are not comparable; say how busy it was.
  console.log(`${cpus().length} cores, load average ${loadavg()[0]!.toFixed(2)} at start, node ${process.version}\n`);
  const started = performance.now();
  for (const name of names) {
    const before = loadavg()[0]!;
    await BENCHMARKS[name]!();
    const after = loadavg()[0]!;
    // More runnable work than cores: other processes took time from the figures above.
    const busy = Math.max(before, after) > cpus().length;
    console.log(`  load average ${before.toFixed(2)} before, ${after.toFixed(2)} after${busy ? ' — BUSY MACHINE: these figures are not comparable with an idle run' : ''}`);
    console.log('');
  }
  console.log(`${names.length} benchmark(s) in ${((performance.now() - started) / 1000).toFixed(0)} s, load average ${loadavg()[0]!.toFixed(2)} at the end`);
}

// Ctrl-C still stops the functions host and the stack a benchmark started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([...running].map((close) => close())).then(() => process.exit(130));
  });
}

main().then(
  // The emulators keep timers and sockets; everything of ours is closed by now.
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
