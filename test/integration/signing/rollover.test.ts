/**
 * Signing keys on the real local stack: the app in the local functions host, keys in
 * the Key Vault emulator, the key set in the Cosmos server, and relying parties built
 * on jose's createRemoteJWKSet. The emulator's clock drives the hourly rollover timer;
 * jose checks `exp`/`iat` against `currentDate` set to the emulator's time. The first
 * keys come from the timer's run at start-up (anonymous requests never create keys).
 */
import {
  type JWTVerifyGetKey,
  base64url,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  jwtVerify,
} from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';
import { createCosmos } from '../../../shared/adapters/cosmos';
import { cosmosKeySets } from '../../../shared/adapters/signing/cosmosKeySets';
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack } from '../../helpers/stack';

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;
const TOKEN_LIFETIME_MIN = 240;

describe('When Keyturn signs tokens and rolls its signing keys on the local stack', () => {
  let stack: TestStack;
  let api: string;

  beforeAll(async () => {
    stack = await startStack({ env: { KEYTURN_TOKEN_MAX_LIFETIME_MINUTES: String(TOKEN_LIFETIME_MIN) } });
    api = `${stack.host!.url}/api`;
    // The rollover timer runs at start-up and publishes the first keys within seconds.
    await eventually(async () => ((await call('GET', jwksUrl())).status === 200 ? true : undefined), 'the first keys from the timer', 30_000, 200);
  });
  afterAll(async () => {
    // DEBUG_SIGNING=<file> keeps the stack's and hosts' logs for a failed run.
    if (process.env.DEBUG_SIGNING) writeFileSync(process.env.DEBUG_SIGNING, stack?.allLogs().join('\n') ?? '');
    await stack?.stop();
  });

  const jwksUrl = () => `${api}/.well-known/jwks.json`;

  async function token(claims: Record<string, unknown> = {}, expiresInSeconds = TOKEN_LIFETIME_MIN * 60) {
    const res = await call('POST', `${api}/tokens`, { body: { claims: { sub: 'svc-1', aud: 'api://orders', ...claims }, expiresInSeconds } });
    expect(res.status).toBe(200);
    return res.json<{ token: string; kid: string; alg: string; expiresAt: string }>();
  }

  /** A relying party; counts its JWKS fetches. No cooldown: the test moves weeks in seconds. */
  function relyingParty() {
    let fetches = 0;
    const jwks = createRemoteJWKSet(new URL(jwksUrl()), {
      cooldownDuration: 0,
      [customFetch]: (...args: Parameters<typeof fetch>) => {
        fetches++;
        return fetch(...args);
      },
    });
    return {
      jwks,
      fetches: () => fetches,
      verify: async (jwt: string, keys: JWTVerifyGetKey = jwks) =>
        jwtVerify(jwt, keys, { issuer: stack.env.KEYTURN_ISSUER, audience: 'api://orders', currentDate: await stack.keyVault.now() }),
    };
  }

  async function publishedKids(): Promise<string[]> {
    return (await call('GET', jwksUrl())).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
  }

  /** Moves the clock and waits until the timer has made the current key stop signing. */
  async function moveAndAwaitRoll(seconds: number, signingKid: string) {
    await stack.keyVault.moveClock(seconds);
    return eventually(async () => {
      const t = await token();
      return t.kid !== signingKid ? t : undefined;
    }, `a rollover away from ${signingKid}`, 60_000, 500);
  }

  test('then, before the first keys exist, anonymous requests create none (503 + Retry-After) and concurrent token requests bootstrap once', async () => {
    // A host with its timers off, for an issuer with no keys yet (its own key names in the same vault).
    const keyName = 'cold-signing';
    const cold = await stack.startSecondHost({
      LOCALHOST_DISABLE_TIMERS: 'true',
      KEYTURN_ISSUER: 'https://cold.keyturn.test',
      KEYTURN_SIGNING_KEY_NAME: keyName,
    });
    const coldKeys = async () => {
      const names: string[] = [];
      for await (const item of stack.keyVault.keyClient().listPropertiesOfKeys()) if (item.name.startsWith(`${keyName}-`)) names.push(item.name);
      return names;
    };
    try {
      const coldJwks = `${cold.url}/api/.well-known/jwks.json`;
      const answers = await Promise.all(Array.from({ length: 10 }, () => call('GET', coldJwks)));
      for (const res of answers) {
        expect(res.status).toBe(503);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(String(res.headers['cache-control'])).toContain('no-store');
        expect(res.json()).toMatchObject({ status: 503, code: 'SIGNING_KEYS_NOT_READY' });
      }
      const discovery = await call('GET', `${cold.url}/api/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(discovery.json()).toMatchObject({ issuer: 'https://cold.keyturn.test', id_token_signing_alg_values_supported: ['RS256'] });
      expect(await coldKeys()).toEqual([]);

      const body = { claims: { sub: 'svc-1', aud: 'api://orders' }, expiresInSeconds: 60 };
      const issued = await Promise.all(Array.from({ length: 6 }, () => call('POST', `${cold.url}/api/tokens`, { body })));
      expect(issued.map((r) => r.status)).toEqual(Array(6).fill(200));
      expect(new Set(issued.map((r) => r.json<{ kid: string }>().kid)).size).toBe(1);
      expect((await coldKeys()).sort()).toEqual([`${keyName}-1`, `${keyName}-2`]); // a signer and a next, nothing discarded
      const jwks = await call('GET', coldJwks);
      expect(jwks.status).toBe(200);
      expect(jwks.json<{ keys: unknown[] }>().keys).toHaveLength(2);
    } finally {
      await cold.stop();
    }
  });

  test('then discovery names the issuer and JWKS, and the JWKS is cacheable, ETagged and answers 304', async () => {
    const config = await call('GET', `${api}/.well-known/openid-configuration`);
    expect(config.status).toBe(200);
    expect(config.json()).toMatchObject({
      issuer: stack.env.KEYTURN_ISSUER,
      jwks_uri: stack.env.KEYTURN_JWKS_URI,
      id_token_signing_alg_values_supported: ['RS256'],
    });

    const jwks = await call('GET', jwksUrl());
    expect(jwks.status).toBe(200);
    const maxAge = Number(/max-age=(\d+)/.exec(String(jwks.headers['cache-control']))?.[1]);
    expect(String(jwks.headers['cache-control'])).toContain('public');
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(300);
    const { keys } = jwks.json<{ keys: Record<string, string>[] }>();
    expect(keys).toHaveLength(2); // current and next
    for (const key of keys) {
      expect(key).toEqual({ kid: expect.any(String), kty: 'RSA', use: 'sig', alg: 'RS256', n: expect.any(String), e: 'AQAB' });
    }

    const etag = String(jwks.headers.etag);
    const again = await call('GET', jwksUrl(), { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    const changed = await call('GET', jwksUrl(), { headers: { 'if-none-match': '"something-else"' } });
    expect(changed.status).toBe(200);
  });

  test('then tokens signed before each of several scheduled rollovers still verify after them, and new tokens verify', async () => {
    const rp = relyingParty();
    let current = await token();
    await rp.verify(current.token);
    // Each roll happens at the timer run after the clock passes 42 days of signing: a token
    // from 2 h before is still alive (4 h lifetime) when the roll has happened, 1 h later.
    for (let roll = 1; roll <= 3; roll++) {
      await stack.keyVault.moveClock(42 * DAY_S - 2 * HOUR_S);
      const before = await token();
      expect(before.kid).toBe(current.kid);
      const after = await moveAndAwaitRoll(3 * HOUR_S, before.kid);
      await expect(rp.verify(before.token)).resolves.toMatchObject({ protectedHeader: { kid: before.kid } });
      await expect(rp.verify(after.token)).resolves.toMatchObject({ protectedHeader: { kid: after.kid } });
      // next, current and the previous key (until the old tokens have expired).
      expect(await publishedKids()).toEqual(expect.arrayContaining([before.kid, after.kid]));
      expect((await publishedKids()).length).toBe(3);
      current = after;
    }
  });

  test('then a relying party with a stale key set verifies a token with a new kid after one refetch', async () => {
    const rp = relyingParty();
    const first = await token();
    await rp.verify(first.token);
    const fetchesBefore = rp.fetches();
    // Two rollovers: the signer is then a key the relying party has never seen.
    const second = await moveAndAwaitRoll(42 * DAY_S + 2 * HOUR_S, first.kid);
    const third = await moveAndAwaitRoll(42 * DAY_S + 2 * HOUR_S, second.kid);
    await expect(rp.verify(third.token)).resolves.toMatchObject({ protectedHeader: { kid: third.kid } });
    expect(rp.fetches()).toBe(fetchesBefore + 1);
  });

  test('then an emergency rollover of a compromised key unpublishes and disables it at once, and new tokens verify', async () => {
    const old = await token();
    const res = await call('POST', `${api}/signing-keys/rollover`, {
      // No App Service authentication here (KEYTURN_TRUST_EASY_AUTH_HEADER is off): the header is ignored.
      headers: { 'x-ms-client-principal-name': 'mallory@contoso.example' },
      body: { reason: 'private key found in a support bundle', compromised: true, kid: old.kid, requestedBy: 'alice@contoso.example' },
    });
    expect(res.status).toBe(200);
    const body = res.json<{ rollover: Record<string, unknown>; signingKid: string; publishedKids: string[]; disabledInKeyVault: boolean }>();
    expect(body.disabledInKeyVault).toBe(true);
    expect(body.rollover).toMatchObject({
      trigger: 'emergency',
      requestedBy: 'alice@contoso.example',
      requestedByVerified: false,
      reason: 'private key found in a support bundle',
      compromised: true,
      fromKid: old.kid,
      retiredKids: [old.kid],
    });
    expect(body.publishedKids).not.toContain(old.kid);

    // A retry naming the same kid (say the answer was lost) rolls nothing more.
    const retry = await call('POST', `${api}/signing-keys/rollover`, {
      body: { reason: 'private key found in a support bundle', compromised: true, kid: old.kid, requestedBy: 'alice@contoso.example' },
    });
    expect(retry.status).toBe(200);
    expect(retry.json()).toMatchObject({ rollover: body.rollover, signingKid: body.signingKid, publishedKids: body.publishedKids });

    const fresh = relyingParty();
    await expect(fresh.verify(old.token)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    const next = await token();
    expect(next.kid).toBe(body.signingKid);
    await expect(fresh.verify(next.token)).resolves.toBeDefined();

    // In Key Vault the compromised key (found by its thumbprint) is disabled and tagged retired.
    const keyClient = stack.keyVault.keyClient();
    const vaultKey = await eventually(async () => {
      for await (const item of keyClient.listPropertiesOfKeys()) {
        for await (const version of keyClient.listPropertiesOfKeyVersions(item.name)) {
          const key = await keyClient.getKey(version.name, { version: version.version });
          const jwk = { kty: 'RSA', n: base64url.encode(key.key!.n!), e: base64url.encode(key.key!.e!) };
          if ((await calculateJwkThumbprint(jwk)) === old.kid) return key;
        }
      }
      return undefined;
    }, 'the compromised key in the vault');
    expect(vaultKey.properties).toMatchObject({ enabled: false, tags: { 'keyturn-state': 'retired' } });
    expect(vaultKey.properties.notBefore).toBeUndefined();
    expect(vaultKey.properties.expiresOn).toBeDefined();
  });

  test.each([
    ['an unknown claim type', { claims: { sub: 's', aud: 'api://orders', extra: null } }, 'claims.extra'],
    ['a registered claim of the wrong type', { claims: { sub: 7, aud: 'api://orders' } }, 'claims.sub'],
    ['a lifetime over the cap', { claims: { sub: 's', aud: 'api://orders' }, expiresInSeconds: TOKEN_LIFETIME_MIN * 60 + 1 }, 'expiresInSeconds'],
  ])('then a token request with %s is a 400 naming the field', async (_what, body, field) => {
    const res = await call('POST', `${api}/tokens`, { body });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION_FAILED', field });
  });

  test.each([
    ['no compromised flag', { reason: 'x' }, 'compromised'],
    ['a compromised flag that is not a boolean', { reason: 'x', compromised: 'yes' }, 'compromised'],
    ['an empty reason', { reason: ' ', compromised: false }, 'reason'],
    ['a requester with a control character', { reason: 'x', compromised: false, requestedBy: 'eve\u0007' }, 'requestedBy'],
    ['a requester over 200 characters', { reason: 'x', compromised: false, requestedBy: 'e'.repeat(201) }, 'requestedBy'],
    ['a kid that is not a thumbprint', { reason: 'x', compromised: true, kid: 'keyturn-signing-1' }, 'kid'],
    ['a kid that is no key of the issuer', { reason: 'x', compromised: true, kid: 'A'.repeat(43) }, 'kid'],
  ])('then an emergency rollover with %s is a 400 naming the field', async (_what, body, field) => {
    const before = await publishedKids();
    const res = await call('POST', `${api}/signing-keys/rollover`, { body });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION_FAILED', field });
    expect(await publishedKids()).toEqual(before);
  });

  test('then tokens carry kid, iss, iat and exp from the emulator clock', async () => {
    const t = await token({ roles: ['reader'] }, 600);
    const header = decodeProtectedHeader(t.token);
    expect(header).toEqual({ alg: 'RS256', kid: t.kid, typ: 'JWT' });
    const { payload } = await relyingParty().verify(t.token);
    const now = Math.floor((await stack.keyVault.now()).getTime() / 1000);
    expect(Math.abs(payload.iat! - now)).toBeLessThan(60);
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload.roles).toEqual(['reader']);
  });

  test('then two hosts running the rollover timer at once roll only once, and the rollover is recorded', async () => {
    const second = await stack.startSecondHost();
    const RUN_FINISHED = 'Signing key rollover run finished';
    try {
      const before = await token();
      // The second host's start-up run first, so a run counted below is one the clock move fired.
      const ran = (from: number) => (second.logs().slice(from).some((l) => l.includes(RUN_FINISHED)) ? true : undefined);
      await eventually(async () => ran(0), "the second host's start-up rollover run", 30_000, 200);
      const mark = second.logs().length;
      // Both hosts' timers fire on this move; the ETag lets one of them win.
      const after = await moveAndAwaitRoll(42 * DAY_S + 2 * HOUR_S, before.kid);
      // Without the second host's run on this move there was no race, and "only once" would prove nothing.
      await eventually(
        async () => ran(mark),
        "the second host's rollover run on the clock move",
        30_000,
        200,
      );
      const cosmos = createCosmos({
        endpoint: stack.env.KEYTURN_COSMOS_ENDPOINT!,
        key: stack.env.KEYTURN_COSMOS_KEY,
        database: stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn',
        ca: readFileSync(stack.env.KEYTURN_COSMOS_CA_FILE!, 'utf8'),
      });
      const sets = cosmosKeySets(cosmos.container('signingKeys'));
      const stored = (await sets.read(stack.env.KEYTURN_ISSUER!))!;
      expect(stored.set.keys.filter((k) => k.state === 'next')).toHaveLength(1);
      expect(stored.set.keys.filter((k) => k.state === 'current').map((k) => k.kid)).toEqual([after.kid]);
      const records = await eventually(async () => {
        const found = (await sets.rollovers(stack.env.KEYTURN_ISSUER!, 50)).filter((r) => r.fromKid === before.kid);
        return found.length > 0 ? found : undefined;
      }, 'the rollover record');
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ trigger: 'schedule', requestedBy: 'keyturn', toKid: after.kid });
      cosmos.client.dispose();
    } finally {
      await second.stop();
    }
  });
});
