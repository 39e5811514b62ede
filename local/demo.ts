/**
 * `npm run demo` (with `npm start` running): seeds the local vault with managed
 * secrets, moves the Key Vault emulator's clock, and prints the renewals as a
 * timeline read from GET /api/credentials. It never prints a secret value.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { credentialFor } from './keyvault/principals';
import { requestJson } from './httpJson';
import { readDemoCa } from './demoCa';

const VAULT_URL = process.env.KEYTURN_DEMO_VAULT_URL ?? 'https://127.0.0.1:8443';
const APP_URL = process.env.KEYTURN_DEMO_APP_URL ?? 'http://127.0.0.1:7071';
const DAY_S = 86_400;
const POLL_MS = 500;

interface Row {
  name: string;
  currentVersion: string;
  expiresOn: string | null;
  stage: string;
  rotation: { id: string; state: string; fromVersion: string; retireAfter: string | null; lastError: string | null } | null;
}

// Clock moves wait for deliveries and the host's catch-up timers: allow them time on a busy machine.
const call = (method: string, url: string, ca: string) => requestJson(url, { method, ca, timeoutMs: 120_000 });

async function main(): Promise<void> {
  const ca = readDemoCa();
  const health = await call('GET', `${APP_URL}/api/health`, ca).catch(() => ({ status: 0, text: '' }));
  if (health.status === 0) throw new Error(`The app does not answer at ${APP_URL}: run \`npm start\` in another terminal.`);

  const secrets = new SecretClient(VAULT_URL, credentialFor('operator'), { disableChallengeResourceVerification: true, tlsOptions: { ca } });
  const vaultNow = async () => new Date(JSON.parse((await call('GET', `${VAULT_URL}/management/vault/time`, ca)).text).time as string);
  const moveClock = async (seconds: number) => {
    const res = await call('PUT', `${VAULT_URL}/management/vault/time/all?seconds=${seconds}`, ca);
    if (res.status !== 200) throw new Error(`Moving the emulator clock failed: ${res.status}`);
  };
  const started = await vaultNow();
  const day = (t: Date) => `day ${String(Math.floor((t.getTime() - started.getTime()) / (DAY_S * 1000))).padStart(3)}`;
  const short = (v: string | undefined | null) => (v ? v.slice(0, 8) : '-');
  const print = async (line: string) => console.log(`${day(await vaultNow())}  ${line}`);

  // What was printed last per credential, so only changes show.
  const seen = new Map<string, string>();
  const poll = async (): Promise<Row[]> => {
    const res = await call('GET', `${APP_URL}/api/credentials`, ca);
    if (res.status !== 200) throw new Error(`GET /api/credentials answered ${res.status}`);
    const rows = (JSON.parse(res.text) as { credentials: Row[] }).credentials.filter((r) => r.name.startsWith('demo-'));
    for (const r of rows) {
      const state = r.rotation?.state ?? 'idle';
      const key = `${r.currentVersion}|${state}`;
      if (seen.get(r.name) === key) continue;
      seen.set(r.name, key);
      const detail =
        state === 'grace'
          ? `new version ${short(r.currentVersion)} is current (expires ${r.expiresOn?.slice(0, 10)}); ${short(r.rotation?.fromVersion)} retires after ${r.rotation?.retireAfter?.slice(0, 10)}`
          : state === 'completed'
            ? `old version ${short(r.rotation?.fromVersion)} retired (disabled); ${short(r.currentVersion)} is the only enabled version`
            : state === 'failed'
              ? `rotation FAILED: ${r.rotation?.lastError}; ${short(r.currentVersion)} stays current`
              : state === 'idle'
                ? `version ${short(r.currentVersion)} expires ${r.expiresOn?.slice(0, 10)}`
                : `rotation ${state}`;
      await print(`${r.name.padEnd(18)} ${detail}`);
    }
    return rows;
  };
  const waitFor = async (what: string, done: (rows: Row[]) => boolean, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (done(await poll())) return;
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };
  const stateOf = (rows: Row[], name: string) => rows.find((r) => r.name === name)?.rotation?.state;

  console.log(`Keyturn renewal demo: vault ${VAULT_URL} (vault key 'local'), app ${APP_URL}\n`);
  const seed = async (name: string, days: number, validityDays: number) => {
    // A clean slate on every run: versions left by an earlier run are not this run's story.
    const existing = await secrets.getSecret(name).then(() => true, () => false);
    if (existing) {
      await (await secrets.beginDeleteSecret(name)).pollUntilDone();
      await secrets.purgeDeletedSecret(name);
      seen.delete(name);
    }
    await secrets.setSecret(name, randomBytes(32).toString('base64'), {
      tags: { 'keyturn-provider': 'symmetric', 'keyturn-validity-days': String(validityDays), 'keyturn-grace-days': '7' },
      expiresOn: new Date((await vaultNow()).getTime() + days * DAY_S * 1000),
    });
    await print(`${name.padEnd(18)} seeded, ${days < 0 ? `expired ${-days} day(s) ago` : `expires in ${days} days`}`);
  };
  await seed('demo-db-key', 10, 90);
  await seed('demo-api-key', 40, 90);
  await seed('demo-expired-key', -1, 90);

  console.log('\n-- Key Vault sends SecretNearExpiry / SecretExpired; Keyturn renews (create → verify → promote → notify)');
  await waitFor('the 10-day and the expired secret to be renewed', (rows) =>
    ['demo-db-key', 'demo-expired-key'].every((n) => stateOf(rows, n) === 'grace'),
  );

  console.log('\n-- 8 days later: the grace period is over, the old versions are retired');
  await moveClock(8 * DAY_S);
  await waitFor('the old versions to be retired', (rows) => ['demo-db-key', 'demo-expired-key'].every((n) => stateOf(rows, n) === 'completed'));

  console.log('\n-- 3 more days: demo-api-key is now inside the 30-day window');
  await moveClock(3 * DAY_S);
  await waitFor('demo-api-key to be renewed', (rows) => stateOf(rows, 'demo-api-key') === 'grace');
  await moveClock(8 * DAY_S);
  await waitFor('demo-api-key to be retired', (rows) => stateOf(rows, 'demo-api-key') === 'completed');

  // What the app reports must be what Key Vault itself lists.
  console.log('\n-- Checking GET /api/credentials against what SecretClient lists in the vault');
  let mismatches = 0;
  for (const row of await poll()) {
    const versions: { version: string; enabled: boolean; stage?: string }[] = [];
    for await (const v of secrets.listPropertiesOfSecretVersions(row.name)) {
      versions.push({ version: v.version!, enabled: v.enabled !== false, stage: v.tags?.['keyturn-stage'] });
    }
    const latestVersion = (await secrets.getSecret(row.name)).properties.version;
    const latest = versions.find((v) => v.version === latestVersion);
    const enabled = versions.filter((v) => v.enabled).map((v) => v.version);
    const ok = latest?.version === row.currentVersion && latest.stage === 'current' && enabled.length === 1;
    if (!ok) mismatches++;
    console.log(
      `${row.name.padEnd(18)} vault latest ${short(latest?.version)} (${latest?.stage}), enabled versions: ${enabled.map(short).join(', ')} ${ok ? '✓ agrees' : '✗ DIFFERS'}`,
    );
  }
  if (mismatches > 0) throw new Error(`${mismatches} credential(s) differ between the app and the vault`);

  console.log('\nDone. At each promotion Keyturn published Keyturn.CredentialRotated on its Event Grid topic; see docs/renewal.md.');
}

main().catch((e: unknown) => {
  console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
