/**
 * A simulated year on the real local stack: the Key Vault emulator's clock is stepped
 * through 365 days, the host's hourly `signingKeyRollover` timer catches up on every
 * step, and at every step a relying party fetches the JWKS over HTTP, gets a token
 * from `/api/tokens`, and checks with jose (currentDate = emulator time) that:
 *   1. at least two keys are published (from the bootstrap on, so also once the first
 *      rollover has happened);
 *   2. the key that signs has been published for at least the publish-ahead time
 *      (except the very first key, which signs at once: nothing can have cached a set);
 *   3. no key of an unexpired token has been unpublished (nothing here is compromised),
 *      and every unexpired token verifies against the set fetched now.
 * Mid-year an operator asks for an emergency (not compromised) rollover, and later Key
 * Vault reports the signing key near expiry (its `exp` is shortened through KeyClient,
 * so the emulator raises KeyNearExpiry, delivered by Event Grid to the app's webhook).
 *
 * Time is compressed with the proportions kept: roll every 14 days, publish 24 h
 * ahead, tokens live 16 h, and the clock moves in 12-hour steps (730 moves). The token
 * lifetime is longer than a step so every token is still alive at the next step, the
 * one that may roll or retire its key; with 60-minute tokens no token would ever be
 * alive across a step and invariant 3 would check nothing.
 *
 * Why 12-hour steps: 6-hour steps (1460 moves, 8 h tokens) took 45–55 s alone on 2
 * shared cores but 83–90 s next to the other signing suites, at the 90 s budget; 12-hour
 * steps take ~31 s alone and ~65 s next to them. A step is a clock move (with the timer's
 * catch-up run), a JWKS GET and a token POST: ~40 ms alone, ~90 ms under load.
 */
import { type JSONWebKeySet, createLocalJWKSet, jwtVerify } from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';
import { createCosmos } from '../../../shared/adapters/cosmos';
import { cosmosKeySets } from '../../../shared/adapters/signing/cosmosKeySets';
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack } from '../../helpers/stack';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const ROLLOVER_DAYS = 14;
const PUBLISH_AHEAD_HOURS = 24;
const TOKEN_LIFETIME_MIN = 16 * 60;
const STEP_HOURS = 12;
const STEPS = (365 * 24) / STEP_HOURS;
/** Emergency drill on day 102.5 (4.5 days after the 7th rollover, so its next is long published). */
const EMERGENCY_STEP = (102.5 * 24) / STEP_HOURS;
/** Key Vault says the signing key nears expiry on day 205 (4.5 days after the rollover of day 200.5). */
const NEAR_EXPIRY_STEP = (205 * 24) / STEP_HOURS;

interface LiveToken {
  token: string;
  kid: string;
  exp: number;
}

describe('When the local stack runs through a simulated year of signing-key rollovers', () => {
  let stack: TestStack;
  let api: string;

  beforeAll(async () => {
    stack = await startStack({
      env: {
        KEYTURN_SIGNING_ROLLOVER_DAYS: String(ROLLOVER_DAYS),
        KEYTURN_SIGNING_PUBLISH_AHEAD_HOURS: String(PUBLISH_AHEAD_HOURS),
        KEYTURN_TOKEN_MAX_LIFETIME_MINUTES: String(TOKEN_LIFETIME_MIN),
        // The credential-renewal timers have nothing to do here: once a year keeps each move cheap.
        KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *',
        KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *',
      },
    });
    api = `${stack.host!.url}/api`;
  });
  afterAll(async () => {
    if (process.env.DEBUG_SIGNING) writeFileSync(process.env.DEBUG_SIGNING, stack?.allLogs().join('\n') ?? '');
    await stack?.stop();
  });

  test('then at every step two or more keys are published, the signer was published ahead, and every live token verifies', async () => {
    const started = Date.now();
    const jwksUrl = `${api}/.well-known/jwks.json`;
    const audience = 'api://year';
    // The timer's run at start-up publishes the first keys.
    await eventually(async () => ((await call('GET', jwksUrl)).status === 200 ? true : undefined), 'the first keys', 30_000, 200);

    /** When each kid was first seen in the JWKS (emulator time). */
    const firstSeen = new Map<string, number>();
    const signers: string[] = [];
    let live: LiveToken[] = [];
    let jwks = { etag: '', keys: createLocalJWKSet({ keys: [] }), kids: new Set<string>() };
    let emergency: { fromKid: string; toKid: string } | undefined;
    let nearExpiryKid: string | undefined;
    let verified = 0;

    // The emulator's time is this machine's time plus an offset that only moves change.
    let offsetMs = (await stack.keyVault.now()).getTime() - Date.now();
    for (let step = 0; step <= STEPS; step++) {
      if (step > 0) {
        await stack.keyVault.moveClock(STEP_HOURS * 3600);
        offsetMs += STEP_HOURS * HOUR_MS;
      }
      const now = new Date(Date.now() + offsetMs);
      const at = `step ${step} (day ${((step * STEP_HOURS) / 24).toFixed(2)}, ${now.toISOString()})`;

      // A relying party fetches the published set (fetch: a kept-alive connection, as relying parties have).
      const res = await fetch(jwksUrl, { headers: jwks.etag ? { 'if-none-match': jwks.etag } : {} });
      expect(res.status === 200 || (res.status === 304 && jwks.etag !== '') ? 'ok' : `JWKS ${res.status} at ${at}`).toBe('ok');
      if (res.status === 200) {
        const set = (await res.json()) as JSONWebKeySet;
        const etag = res.headers.get('etag')!;
        jwks = { etag, keys: createLocalJWKSet(set), kids: new Set(set.keys.map((k) => k.kid!)) };
      }
      for (const kid of jwks.kids) if (!firstSeen.has(kid)) firstSeen.set(kid, now.getTime());

      // 1. More than one key is published.
      expect(jwks.kids.size >= 2 ? 'ok' : `${jwks.kids.size} key(s) at ${at}`).toBe('ok');

      // 3. Every unexpired token's key is still published, and the token verifies.
      live = live.filter((t) => t.exp > now.getTime());
      for (const t of live) {
        expect(jwks.kids.has(t.kid) ? 'ok' : `${t.kid} unpublished at ${at} while a token is alive`).toBe('ok');
        await jwtVerify(t.token, jwks.keys, { issuer: stack.env.KEYTURN_ISSUER, audience, currentDate: now });
        verified++;
      }

      if (step === EMERGENCY_STEP) {
        const drill = await call('POST', `${api}/signing-keys/rollover`, {
          body: { reason: 'mid-year drill', compromised: false, requestedBy: 'year-test' },
        });
        expect(drill.status).toBe(200);
        const { rollover } = drill.json<{ rollover: { trigger: string; fromKid: string; toKid: string; compromised: boolean } }>();
        expect(rollover).toMatchObject({ trigger: 'emergency', compromised: false });
        emergency = rollover;
      }

      // A token from the key that signs now (an issuer's sign-in at this instant).
      const issued = await fetch(`${api}/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ claims: { sub: `step-${step}`, aud: audience }, expiresInSeconds: TOKEN_LIFETIME_MIN * 60 }),
      });
      expect(issued.status).toBe(200);
      const token = (await issued.json()) as { token: string; kid: string; expiresAt: string };
      if (signers.at(-1) !== token.kid) signers.push(token.kid);

      // 2. The signer is published (in the set just fetched) and has been for the publish-ahead time.
      expect(jwks.kids.has(token.kid) ? 'ok' : `signer ${token.kid} not in the JWKS at ${at}`).toBe('ok');
      if (signers.length > 1) {
        const publishedFor = now.getTime() - (firstSeen.get(token.kid) ?? now.getTime());
        expect(publishedFor >= PUBLISH_AHEAD_HOURS * HOUR_MS ? 'ok' : `${token.kid} signs after ${publishedFor / HOUR_MS} h at ${at}`).toBe('ok');
      }
      live.push({ token: token.token, kid: token.kid, exp: Date.parse(token.expiresAt) });

      if (step === NEAR_EXPIRY_STEP) {
        // The signing key's exp is brought in to 30 days + 3 h: the emulator raises KeyNearExpiry
        // during the next step, before that step's timer run.
        nearExpiryKid = token.kid;
        const keyClient = stack.keyVault.keyClient();
        const shortened: string[] = [];
        for await (const props of keyClient.listPropertiesOfKeys()) {
          if (props.tags?.['keyturn-state'] !== 'current') continue;
          // One version per key name: the latest is the signer (a listing carries no version).
          await keyClient.updateKeyProperties(props.name, { expiresOn: new Date(now.getTime() + 30 * DAY_MS + 3 * HOUR_MS) });
          shortened.push(props.name);
        }
        expect(shortened).toHaveLength(1);
      }
      if (step === NEAR_EXPIRY_STEP + 1) {
        // The rollover came forward: the key that signed a step ago no longer signs.
        expect(token.kid).not.toBe(nearExpiryKid);
      }
    }

    // Tokens live 16 h and steps are 12 h: each step after the first verified the previous step's token.
    // Without this count, "every live token verifies" would also pass with no live token at all.
    expect(verified).toBe(STEPS);

    // The record of the year, read from the key set's partition in Cosmos DB.
    const cosmos = createCosmos({
      endpoint: stack.env.KEYTURN_COSMOS_ENDPOINT!,
      key: stack.env.KEYTURN_COSMOS_KEY,
      database: stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn',
      ca: readFileSync(stack.env.KEYTURN_COSMOS_CA_FILE!, 'utf8'),
    });
    try {
      const records = await cosmosKeySets(cosmos.container('signingKeys')).rollovers(stack.env.KEYTURN_ISSUER!, 100);
      const triggers = records.map((r) => r.trigger).reverse();
      // Rollovers on days 14…98 (7), the drill on 102.5, 116.5…200.5 (7), the expiry on 205.5, then 219.5…359.5 (11).
      expect(triggers.filter((t) => t === 'schedule')).toHaveLength(25);
      expect(triggers.filter((t) => t === 'emergency')).toHaveLength(1);
      expect(triggers.filter((t) => t === 'expiry')).toHaveLength(1);
      expect(triggers[0]).toBe('bootstrap');
      expect(records.find((r) => r.trigger === 'emergency')).toMatchObject({ fromKid: emergency!.fromKid, requestedBy: 'year-test' });
      expect(records.find((r) => r.trigger === 'expiry')).toMatchObject({ fromKid: nearExpiryKid });
      expect(signers).toHaveLength(records.length); // every change of signer is recorded, and only those
    } finally {
      cosmos.client.dispose();
    }

    // In Key Vault, every key that left the JWKS is disabled and tagged retired.
    let retired = 0;
    for await (const props of stack.keyVault.keyClient().listPropertiesOfKeys()) {
      if (props.tags?.['keyturn-state'] !== 'retired') continue;
      retired++;
      expect(props.enabled).toBe(false);
    }
    expect(retired).toBe(signers.length + 1 - jwks.kids.size);
    // Check 3 ran: from step 1 on, the previous step's token (16 h > 12 h) was alive and verified
    // (an empty list of live tokens would pass it vacuously).
    expect(verified).toBeGreaterThanOrEqual(STEPS);

    const seconds = (Date.now() - started) / 1000;
    console.log(`simulated year: ${STEPS} steps of ${STEP_HOURS} h, ${signers.length} signers, ${verified} live-token verifications, ${seconds.toFixed(1)} s`);
  }, 240_000);
});
