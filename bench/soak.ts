/**
 * Soak run (`npm run soak`): what an overloaded operator's day does to renewal, on
 * loopback only and bounded in count and time. Two functions hosts on one stack; N
 * managed secrets come due at once; a shuffled flood of their SecretNearExpiry events
 * with duplicates goes to both hosts' webhooks while Key Vault fails a fraction of
 * requests; one host is killed mid-flood and restarted. Then it counts what must be 0:
 * double rotations, moments with no enabled version, pending copies left enabled after
 * promotion, and 5xx answers other than a dependency's 503 with Retry-After.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fmt, httpClient, sleep, table, waitAtMost } from './lib';
import { type BenchApp, cosmosClient, keyVaultClientOptions, running, secretNearExpiry, staticCredential, startApp } from './stack';
import { LOCAL_VAULT_KEY } from '../local/stack';
import { credentialKey } from '../shared/domain/rotation';

export interface SoakOptions {
  secrets: number;
  /** Fraction of Key Vault requests answered 429/503. */
  faults: number;
  /** Extra copies of events, as a fraction of the secrets (redelivery). */
  duplicates: number;
  /** Manual renew calls spread over the flood (impatient users), 0 for none. */
  renews: number;
  /** Kill one host mid-flood and restart it. */
  restart: boolean;
  maxSeconds: number;
  seed: number;
}

export interface SoakReport {
  options: SoakOptions;
  seconds: number;
  renewed: number;
  doubleRotations: number;
  zeroEnabledMoments: number;
  /** Moments with more than two enabled versions (current and previous); reported, not one of the four zeros. */
  overTwoEnabledMoments: number;
  samples: number;
  pendingEnabledAfterPromotion: number;
  unexpected5xx: number;
  /** Webhook 500s: a handler's dependency failed; Event Grid retries these (func does the same). */
  webhookRetried: number;
  dependency503: number;
  statuses: Record<string, number>;
}

export const DEFAULTS: SoakOptions = { secrets: 30, faults: 0.3, duplicates: 0.3, renews: 0, restart: true, maxSeconds: 240, seed: 7 };

const DAY_MS = 86_400_000;

/** mulberry32, so a run can be repeated. */
function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function soak(options: SoakOptions, app?: BenchApp): Promise<SoakReport> {
  const own = app === undefined;
  const stackApp = app ?? (await startApp({ hosts: 2, keyVaultFaults: options.faults, faultSeed: options.seed }));
  const random = seeded(options.seed);
  const http = httpClient({ maxSockets: 8 });
  const statuses = new Map<string, number>();
  const report = { unexpected5xx: 0, webhookRetried: 0, dependency503: 0 };
  const note = (what: string, status: number, retryAfter: unknown) => {
    statuses.set(`${what} ${status}`, (statuses.get(`${what} ${status}`) ?? 0) + 1);
    if (status < 500) return;
    if (what === 'webhook' && status === 500) report.webhookRetried++;
    else if (status === 503 && retryAfter !== undefined) report.dependency503++;
    else report.unexpected5xx++;
  };
  try {
    const { stack, hosts } = stackApp;
    const secrets = new SecretClient(stack.keyVault.url, staticCredential, keyVaultClientOptions(stackApp.ca));
    const names = Array.from({ length: options.secrets }, (_, i) => `soak-${String(i).padStart(3, '0')}`);
    const expiresOn = new Date(stack.keyVault.clock.now().getTime() + 10 * DAY_MS);
    const seededVersions = new Map<string, string>();
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(
        names.slice(i, i + 10).map(async (name) => {
          // Retried: under heavy faults the SDK's own retries can run out (a duplicate version is harmless here).
          const s = await retried(() => secrets.setSecret(name, randomBytes(32).toString('base64'), { tags: { 'keyturn-provider': 'symmetric' }, expiresOn }));
          seededVersions.set(name, s.properties.version!);
        }),
      );
    }
    const t0 = performance.now();

    // Watch every secret, round robin, for a moment with no enabled version.
    let watching = true;
    let samples = 0;
    let zeroEnabledMoments = 0;
    // Outside a rotation's create/verify window a secret has at most current + previous enabled.
    let overTwoEnabledMoments = 0;
    const watcher = (async () => {
      for (let i = 0; watching; i++) {
        const name = names[i % names.length]!;
        try {
          let enabled = 0;
          for await (const v of secrets.listPropertiesOfSecretVersions(name)) if (v.enabled) enabled++;
          samples++;
          if (enabled === 0) zeroEnabledMoments++;
          if (enabled > 2) overTwoEnabledMoments++;
        } catch {
          // A fault the SDK's retries did not absorb: no sample.
        }
        await sleep(20);
      }
    })();

    // The flood: one event per secret plus duplicates, shuffled, in batches to both hosts.
    const events = names.map((name) => secretNearExpiry(stackApp, name, seededVersions.get(name)!, expiresOn));
    const extra = Math.round(options.duplicates * events.length);
    for (let i = 0; i < extra; i++) events.push(events[Math.floor(random() * names.length)]!);
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [events[i], events[j]] = [events[j]!, events[i]!];
    }
    // At least 8 batches (of at most 10 events), so the restart falls mid-flood.
    const size = Math.max(1, Math.min(10, Math.ceil(events.length / 8)));
    const batches: unknown[][] = [];
    for (let i = 0; i < events.length; i += size) batches.push(events.slice(i, i + size));
    // Host 2 goes down at the pair of batches holding the middle one, and is back two pairs later.
    const killAt = options.restart ? Math.floor(batches.length / 4) * 2 : -1;
    let restarted: Promise<void> = Promise.resolve();
    for (let b = 0; b < batches.length; b += 2) {
      if (b === killAt) {
        await hosts[1]!.kill();
        restarted = sleep(1000).then(() => hosts[1]!.restart());
      }
      await Promise.all(
        [0, 1].map(async (k) => {
          const batch = batches[b + k];
          if (!batch) return;
          // While host 2 is down its share goes to host 1, as a load balancer would send it.
          const host = k === 1 && options.restart && b >= killAt && b < killAt + 4 ? hosts[0]! : hosts[k]!;
          const reply = await http.call('POST', `${host.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, {
            body: batch,
            headers: { 'aeg-event-type': 'Notification' },
          });
          note('webhook', reply.status, reply.headers['retry-after']);
        }),
      );
      for (let r = 0; r < Math.ceil(options.renews / Math.max(1, batches.length / 2)); r++) {
        const name = names[Math.floor(random() * names.length)]!;
        const host = hosts[Math.floor(random() * 2)]!;
        // As an impatient user who knows which version should go: renew only if it is still current.
        const reply = await http
          .call('POST', `${host.url}/api/credentials/local/${name}/renew`, { body: { fromVersion: seededVersions.get(name) } })
          .catch(() => undefined);
        if (reply) note('renew', reply.status, reply.headers['retry-after']);
      }
    }
    await restarted;

    // Settled: every secret renewed (its rotation in grace or completed) and none in flight, or the
    // time is up. Read from Cosmos DB: under heavy faults the operator's listing itself can answer
    // 503, which would otherwise look like nothing renewed. The listing is still called (one at a
    // time), as an operator watching would, and its answers counted.
    let renewed = 0;
    const deadline = t0 + options.maxSeconds * 1000;
    const rotations = rotationReader(stackApp);
    let listing: Promise<void> | undefined;
    while (performance.now() < deadline) {
      listing ??= http
        .call('GET', `${hosts[0]!.url}/api/credentials`)
        .then((reply) => note('list', reply.status, reply.headers['retry-after']))
        .catch(() => undefined)
        .finally(() => (listing = undefined));
      const settled = await rotations.settled(names).catch(() => undefined);
      if (settled) {
        renewed = settled.renewed;
        if (renewed === names.length && settled.inFlight === 0) break;
      }
      await sleep(1000);
    }
    const seconds = (performance.now() - t0) / 1000;
    // Its answer still counts, but the run stays bounded.
    await waitAtMost(listing, 60_000);
    rotations.close();
    watching = false;
    await watcher;

    // What is left in the vault, read with retries until the faults let each listing through.
    let doubleRotations = 0;
    let pendingEnabledAfterPromotion = 0;
    for (const name of names) {
      const versions = await retried(() => all(secrets.listPropertiesOfSecretVersions(name)));
      // Each renewal writes one version tagged with its rotation: more than one rotation is a double.
      const rotations = new Set(versions.map((v) => v.tags?.['keyturn-rotation']).filter(Boolean));
      doubleRotations += Math.max(0, rotations.size - 1);
      const pending = await retried(() => all(secrets.listPropertiesOfSecretVersions(`${name}--pending`)));
      if (rotations.size >= 1) pendingEnabledAfterPromotion += pending.filter((p) => p.enabled).length;
    }
    return {
      options,
      seconds,
      renewed,
      doubleRotations,
      zeroEnabledMoments,
      overTwoEnabledMoments,
      samples,
      pendingEnabledAfterPromotion,
      ...report,
      statuses: Object.fromEntries([...statuses].sort()),
    };
  } finally {
    http.close();
    if (own) await stackApp.close();
  }
}

/** Renewal's own record of where each soak secret's rotations stand (Cosmos DB, read-only). */
function rotationReader(app: BenchApp) {
  const cosmos = cosmosClient(app);
  const container = cosmos.database(app.stack.settings.KEYTURN_COSMOS_DATABASE ?? 'keyturn').container('rotations');
  return {
    async settled(names: string[]): Promise<{ renewed: number; inFlight: number }> {
      const wanted = new Set(names.map((n) => credentialKey(LOCAL_VAULT_KEY, n)));
      const { resources } = await container.items
        .query<{ credentialId: string; status: string; step: string }>('SELECT c.credentialId, c.status, c.step FROM c')
        .fetchAll();
      const mine = resources.filter((r) => wanted.has(r.credentialId));
      const renewed = new Set(mine.filter((r) => r.status === 'completed' || (r.status === 'active' && r.step === 'retire')).map((r) => r.credentialId));
      return { renewed: renewed.size, inFlight: mine.filter((r) => r.status === 'active' && r.step !== 'retire').length };
    },
    close: () => cosmos.dispose(),
  };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function retried<T>(fn: () => Promise<T>, tries = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= tries) throw e;
      await sleep(200);
    }
  }
}

export function printReport(r: SoakReport): void {
  const o = r.options;
  console.log(
    `soak: ${o.secrets} managed secrets, 2 hosts, Key Vault faults ${o.faults}, duplicates ${o.duplicates}, ` +
      `${o.renews} renew calls, ${o.restart ? 'one host killed and restarted mid-flood' : 'no restart'}, seed ${o.seed}`,
  );
  console.log(
    table(
      ['must be 0', 'count'],
      [
        ['double rotations', String(r.doubleRotations)],
        [`moments with no enabled version (${r.samples} samples)`, String(r.zeroEnabledMoments)],
        ['pending copies enabled after promotion', String(r.pendingEnabledAfterPromotion)],
        ['5xx other than a dependency 503', String(r.unexpected5xx)],
      ],
    ),
  );
  console.log(`  moments with more than two enabled versions: ${r.overTwoEnabledMoments}`);
  console.log(`  renewed ${r.renewed}/${o.secrets} in ${fmt(r.seconds, 1)} s; webhook 500s retried by Event Grid: ${r.webhookRetried}; dependency 503s: ${r.dependency503}`);
  console.log(`  answers: ${Object.entries(r.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
}

function parseArgs(argv: string[]): SoakOptions {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    const n = Number(value);
    switch (flag) {
      case '--secrets':
        o.secrets = n;
        break;
      case '--faults':
        o.faults = n;
        break;
      case '--duplicates':
        o.duplicates = n;
        break;
      case '--renews':
        o.renews = n;
        break;
      case '--restart':
        o.restart = value !== 'false';
        break;
      case '--max-seconds':
        o.maxSeconds = n;
        break;
      case '--seed':
        o.seed = n;
        break;
      default:
        throw new Error(`unknown option ${flag}; options: --secrets N --faults F --duplicates F --renews N --restart true|false --max-seconds S --seed N`);
    }
    if (flag !== '--restart' && !Number.isFinite(n)) throw new Error(`${flag} needs a number`);
  }
  if (!(o.secrets >= 1 && o.secrets <= 2000)) throw new Error('--secrets must be within 1..2000');
  if (!(o.faults >= 0 && o.faults < 1)) throw new Error('--faults must be within 0..1');
  if (!(o.maxSeconds > 0 && o.maxSeconds <= 1800)) throw new Error('--max-seconds must be within 1..1800');
  return o;
}

if (require.main === module) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void Promise.allSettled([...running].map((close) => close())).then(() => process.exit(130)));
  }
  soak(parseArgs(process.argv.slice(2))).then(
    (r) => {
      printReport(r);
      const bad = r.doubleRotations + r.zeroEnabledMoments + r.pendingEnabledAfterPromotion + r.unexpected5xx;
      process.exit(bad === 0 ? 0 : 1);
    },
    (e: unknown) => {
      console.error(`soak: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
}
