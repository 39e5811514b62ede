/**
 * Property suite over every HTTP edge of the local stack: the local host's own endpoints,
 * its Event Grid webhook (with the app's keyVaultEvents behind it), the local Event Grid's
 * routes, and every app HTTP route, discovered from the host's function list at run time.
 * Generated paths, query strings, headers and bodies must never get a 5xx (except a
 * dependency's 503 with Retry-After), and a 4xx must change nothing (Cosmos DB documents,
 * vault listing, Event Grid subscriptions and deliveries).
 */
import { CosmosClient } from '@azure/cosmos';
import fc from 'fast-check';
import http from 'node:http';
import https from 'node:https';
import { tokenFor } from '../../local/keyvault/principals';
import { startStack, type TestStack } from '../helpers/stack';
import {
  PROTOTYPE_NAMES,
  RUNS,
  chunking,
  contentType,
  hostileBody,
  hostileHeaders,
  hostileJsonValue,
  nestedText,
  oddString,
  pathSegment,
  queryString,
} from './generators';

/**
 * Cases held back because they still answered 5xx through code outside this suite's area:
 * only these exact generator values, the routes themselves are fuzzed in full. Empty now
 * (the Key Vault emulator's stores are null-prototype, so `constructor` is a 404 there);
 * keep it empty.
 */
export const KNOWN_5XX_TODO: ReadonlyArray<{ route: string; param: string; values: readonly string[]; owner: string }> = [];

function withoutTodoValues(route: string, param: string, values: string[]): string[] {
  const held = KNOWN_5XX_TODO.filter((t) => t.route === route && t.param === param).flatMap((t) => t.values.map((v) => v.toLowerCase()));
  return values.filter((v) => !held.includes(v.toLowerCase()));
}

function withoutTodo(route: string, param: string, arb: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const held = KNOWN_5XX_TODO.filter((t) => t.route === route && t.param === param).flatMap((t) => t.values.map((v) => v.toLowerCase()));
  if (held.length === 0) return arb;
  return arb.filter((v) => {
    let decoded = v;
    try {
      decoded = decodeURIComponent(v);
    } catch {
      // malformed encoding is never a held-back value
    }
    return !held.includes(decoded.toLowerCase());
  });
}

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Pieces for Transfer-Encoding: chunked; null sends Content-Length. */
  chunks: number | null;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function send(req: Sent, ca?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(req.url);
    const headers: Record<string, string> = { ...req.headers };
    // Explicit: Node only chunks POST/PUT-like requests by default, and would send a GET body unframed.
    if (req.chunks === null) headers['content-length'] = String(req.body.length);
    else headers['transfer-encoding'] = 'chunked';
    const options = { method: req.method, headers, timeout: 60_000, ...(ca ? { ca } : {}) };
    const request = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer in 60 s to ${req.method} ${req.url}`)));
    request.on('error', reject);
    if (req.chunks === null || req.body.length === 0) {
      request.end(req.body);
      return;
    }
    const size = Math.ceil(req.body.length / req.chunks);
    for (let i = 0; i < req.body.length; i += size) request.write(req.body.subarray(i, i + size));
    request.end();
  });
}

function describeSent(req: Sent): string {
  const body = req.body.length > 300 ? `${req.body.subarray(0, 300).toString('utf8')}… (${req.body.length} bytes)` : req.body.toString('utf8');
  return `${req.method} ${req.url.slice(0, 300)} headers=${JSON.stringify(req.headers).slice(0, 300)} chunks=${req.chunks} body=${body}`;
}

/** No 5xx, except a dependency failure's 503 that says when to retry. */
function expectNoServerError(req: Sent, res: Answer): void {
  if (res.status < 500) return;
  if (res.status === 503 && res.headers['retry-after'] !== undefined) return;
  throw new Error(`${res.status} for ${describeSent(req)}\nanswer: ${res.text.slice(0, 1_000)}`);
}

const json = (s: unknown) => Buffer.from(JSON.stringify(s));

describe('property: no input gets a 5xx, and a 4xx changes nothing', () => {
  let stack: TestStack;
  let hostUrl: string;
  let fingerprint: () => Promise<string>;
  let httpFunctions: Array<{ name: string; route: string; methods: string[] }>;

  beforeAll(async () => {
    stack = await startStack({ env: { LOCALHOST_DISABLE_TIMERS: 'true' } });
    hostUrl = stack.host!.url;
    const { KEYTURN_COSMOS_ENDPOINT: endpoint, KEYTURN_COSMOS_KEY: key, KEYTURN_COSMOS_DATABASE: database } = stack.env;
    const cosmos = new CosmosClient({
      endpoint: endpoint!,
      key: key!,
      agent: new https.Agent({ ca: stack.ca }),
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const db = cosmos.database(database ?? 'keyturn');
    const secrets = stack.keyVault.secretClient();
    const keys = stack.keyVault.keyClient();
    const grid = async (path: string) => (await send({ method: 'GET', url: `${stack.eventGrid.url}${path}`, headers: {}, body: Buffer.alloc(0), chunks: null }, stack.ca)).text;
    fingerprint = async () => {
      const containers = (await db.containers.readAll().fetchAll()).resources.map((c) => c.id).sort();
      const documents = await Promise.all(
        containers.map(async (c) => {
          const docs = (await db.container(c).items.query<{ id: string; _etag: string }>('SELECT c.id, c._etag FROM c').fetchAll()).resources;
          return `${c}:${docs.map((d) => `${d.id}@${d._etag}`).sort().join(',')}`;
        }),
      );
      const listed: string[] = [];
      for await (const s of secrets.listPropertiesOfSecrets()) listed.push(`secret ${s.name} ${s.version} ${s.enabled} ${s.updatedOn?.toISOString()}`);
      for await (const k of keys.listPropertiesOfKeys()) listed.push(`key ${k.name} ${k.version} ${k.enabled} ${k.updatedOn?.toISOString()}`);
      // The customer's vault (its owner sees everything there) and the one clock.
      const byok = stack.vaults['contoso-byok']!;
      for await (const s of byok.secretClient('contoso-admin').listPropertiesOfSecrets()) listed.push(`byok secret ${s.name} ${s.version} ${s.enabled} ${s.updatedOn?.toISOString()}`);
      for await (const k of byok.keyClient('contoso-admin').listPropertiesOfKeys()) listed.push(`byok key ${k.name} ${k.version} ${k.enabled} ${k.updatedOn?.toISOString()}`);
      const clock = (await send({ method: 'GET', url: `${stack.keyVault.url}/management/vault/time`, headers: {}, body: Buffer.alloc(0), chunks: null }, stack.ca)).text;
      listed.push(`clock ${(JSON.parse(clock) as { offsetSeconds: number }).offsetSeconds}`);
      const deliveries = JSON.parse(await grid('/management/deliveries')) as unknown[];
      const subscriptions = (JSON.parse(await grid('/management/subscriptions')) as Array<{ name: string; endpoint: string; topic: string }>).map(
        (s) => `${s.name} ${s.endpoint} ${s.topic}`,
      );
      return JSON.stringify({ documents, listed: listed.sort(), deliveries: deliveries.length, subscriptions });
    };
    const list = JSON.parse((await send({ method: 'GET', url: `${hostUrl}/admin/functions`, headers: {}, body: Buffer.alloc(0), chunks: null })).text) as Array<{
      name: string;
      route?: string;
      methods?: string[];
    }>;
    // The app creates its Cosmos schema at start, asynchronously: health waits for it, so the fingerprint sees every container.
    await send({ method: 'GET', url: `${hostUrl}/api/health`, headers: {}, body: Buffer.alloc(0), chunks: null });
    httpFunctions = list.filter((f) => f.route !== undefined).map((f) => ({ name: f.name, route: f.route!, methods: f.methods ?? ['GET'] }));
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  /** Runs `requests` and checks each answer; around a 4xx, the stack's state must not move. */
  /**
   * `notImplemented`: the Key Vault emulator answers an Azure operation it does not emulate
   * with 501 NotImplemented, on purpose (the SDK does not retry it; transport tests pin it):
   * allowed there, and like a 4xx it must change nothing.
   */
  async function check(requests: fc.Arbitrary<Sent>, ca?: string, options: { notImplemented?: boolean } = {}): Promise<void> {
    let before = await fingerprint();
    // Counterexamples print as one readable line, not megabytes of body bytes.
    const printable = requests.map((req) => Object.assign(req, { [fc.toStringMethod]: () => describeSent(req) }));
    await fc.assert(
      fc.asyncProperty(printable, async (req) => {
        const res = await send(req, ca);
        const unemulated = options.notImplemented === true && res.status === 501 && /"code":"NotImplemented"/.test(res.text);
        if (!unemulated) expectNoServerError(req, res);
        const after = await fingerprint();
        if (((res.status >= 400 && res.status < 500) || unemulated) && after !== before) {
          throw new Error(`${res.status} changed the stack's state for ${describeSent(req)}\nbefore: ${before}\nafter:  ${after}`);
        }
        before = after;
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }

  const common = (method: fc.Arbitrary<string>, url: fc.Arbitrary<string>, body: fc.Arbitrary<Buffer> = hostileBody) =>
    fc
      .record({ method, url, headers: hostileHeaders, type: contentType, body, chunks: chunking })
      .map(({ type, ...rest }): Sent => ({ ...rest, headers: type === undefined ? rest.headers : { ...rest.headers, 'content-type': type } }));

  it('discovers the app routes from the host, and its state fingerprint sees changes', async () => {
    expect(httpFunctions.map((f) => f.name)).toEqual(expect.arrayContaining(['tokens', 'credentialsRenew', 'health']));
    const before = await fingerprint();
    expect((JSON.parse(before) as { documents: string[] }).documents.length).toBeGreaterThan(0);
    await stack.keyVault.secretClient().setSecret('fuzz-fingerprint-probe', 'not-managed');
    expect(await fingerprint()).not.toBe(before);
  });

  it("the issue's examples, always tried", async () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}): Sent => ({
      method: 'POST',
      url: `${hostUrl}${path}`,
      headers: { 'content-type': 'application/json', ...headers },
      body: Buffer.from(body),
      chunks: null,
    });
    const kvEvent = (vault: string, data: string) =>
      `[{"id":"e-${vault}","topic":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${vault}","subject":"s","eventType":"Microsoft.KeyVault.SecretNearExpiry","eventTime":"2030-01-01T00:00:00Z","data":${data},"dataVersion":"1","metadataVersion":"1"}]`;
    const webhook = { 'aeg-event-type': 'Notification' };
    const cases: Sent[] = [
      ...['toString', 'constructor', 'hasOwnProperty', '__proto__'].map((claim) => post('/api/tokens', `{"claims":{"sub":"s","aud":"a","${claim}":"x"}}`)),
      post('/api/tokens', `{"claims":{"sub":"s","aud":"a","deep":${nestedText(3_000)}}}`),
      post('/api/tokens', '{"claims":{"__proto__":{"sub":"x","aud":"y"}}}'),
      { ...post('/api/tokens', '{"claims":{"sub":"s","aud":"a"}}'), chunks: 3 },
      ...withoutTodoValues('credentialsRenew', 'vault', ['constructor', 'toString', '__proto__']).map((vault) => post(`/api/credentials/${vault}/x/renew`, '{}')),
      ...withoutTodoValues('credentialsRenew', 'name', PROTOTYPE_NAMES.filter((n) => /^[0-9a-zA-Z-]+$/.test(n))).map((name) => post(`/api/credentials/local/${name}/renew`, '{}')),
      ...['constructor', 'toString', '__proto__', 'hasOwnProperty', stack.keyVault.vaultName].map((vault) =>
        post('/runtime/webhooks/EventGrid?functionName=keyVaultEvents', kvEvent(vault, `{"VaultName":"${vault}","ObjectName":"toString","ObjectType":"Secret"}`), webhook),
      ),
      ...['constructor', 'hasOwnProperty'].map((name) =>
        post(
          '/runtime/webhooks/EventGrid?functionName=keyVaultEvents',
          kvEvent(stack.keyVault.vaultName, `{"VaultName":"${stack.keyVault.vaultName}","ObjectName":"${name}","ObjectType":"Secret"}`),
          webhook,
        ),
      ),
      post('/runtime/webhooks/EventGrid?functionName=keyVaultEvents', kvEvent(stack.keyVault.vaultName, nestedText(5_000)), webhook),
      post('/runtime/webhooks/EventGrid?functionName=keyVaultEvents', `[${kvEvent('v', nestedText(50_000, 'array')).slice(1, -1)}]`, webhook),
      { ...post('/api/tokens', '{}'), headers: { host: '[bad', 'content-type': 'application/json' } },
    ];
    // None of these involves a failing dependency, so even a 503 is a failure here.
    const failures: string[] = [];
    for (const req of cases) {
      const t0 = Date.now();
      const res = await send(req);
      if (process.env.FUZZ_DEBUG) console.log(res.status, Date.now() - t0, 'ms', describeSent(req).slice(0, 200), res.text.slice(0, 200));
      if (res.status >= 500) failures.push(`${res.status} for ${describeSent(req).slice(0, 300)}: ${res.text.slice(0, 200)}`);
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('every app HTTP route', async () => {
    for (const fn of httpFunctions) {
      // Each {param} gets a generated segment; constraints and catch-alls are kept out of the way.
      const names = [...fn.route.matchAll(/\{\*?([^}:=?]+)[^}]*\}/g)].map((m) => m[1] as string);
      const params = fc.tuple(...names.map((n) => withoutTodo(fn.name, n, pathSegment)));
      const url = fc.tuple(params, queryString).map(([values, query]) => {
        let i = 0;
        return `${hostUrl}/api/${fn.route.replace(/\{[^}]*\}/g, () => values[i++] as string)}${query}`;
      });
      const method = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...fn.methods) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') });
      await check(common(method, url));
    }
  }, 600_000);

  it("the host's admin endpoints", async () => {
    const invoke = fc.tuple(
      fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES).map(encodeURIComponent), pathSegment),
      queryString,
    ).map(([name, query]) => `${hostUrl}/admin/functions/${name}${query}`);
    await check(common(fc.constantFrom('POST', 'GET', 'DELETE'), invoke));
    await check(common(fc.constant('GET'), queryString.map((q) => `${hostUrl}/admin/functions${q}`)));
  }, 300_000);

  it("the host's Event Grid webhook, with the app's keyVaultEvents behind it", async () => {
    const vaultName = fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), fc.constant(stack.keyVault.vaultName), oddString);
    const event = fc
      .record({
        id: fc.oneof(fc.uuid(), oddString),
        topic: fc.oneof(fc.constant(stack.keyVault.topic), vaultName.map((v) => `/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${v}`)),
        subject: oddString,
        eventType: fc.constantFrom(
          'Microsoft.KeyVault.SecretNearExpiry',
          'Microsoft.KeyVault.SecretExpired',
          'Microsoft.KeyVault.SecretNewVersionCreated',
          'constructor',
          'Microsoft.KeyVault.__proto__',
        ),
        eventTime: fc.oneof(fc.constant('2030-01-01T00:00:00Z'), oddString),
        data: fc.oneof(
          fc.record({ VaultName: vaultName, ObjectName: fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), oddString), ObjectType: fc.constantFrom('Secret', 'Key', 'constructor'), Version: oddString }),
          hostileJsonValue,
        ),
        dataVersion: fc.constantFrom('1', ''),
        metadataVersion: fc.constant('1'),
      })
      .map((e) => json(e));
    const deepEvent = fc.constantFrom(65, 500, 5_000, 50_000).map((n) =>
      Buffer.from(`[{"id":"d","subject":"s","eventType":"Microsoft.KeyVault.SecretNearExpiry","eventTime":"2030-01-01T00:00:00Z","data":${nestedText(n)}}]`),
    );
    const body = fc.oneof(
      fc.array(event, { minLength: 1, maxLength: 3 }).map((events) => Buffer.concat([Buffer.from('['), ...events.flatMap((e, i) => (i ? [Buffer.from(','), e] : [e])), Buffer.from(']')])),
      deepEvent,
      hostileBody,
    );
    const requests = fc
      .record({
        fn: fc.oneof({ weight: 4, arbitrary: fc.constant('keyVaultEvents') }, { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) }),
        eventType: fc.option(fc.constantFrom('Notification', 'SubscriptionValidation', 'Unsubscribe', 'constructor', 'notification'), { nil: undefined }),
        method: fc.constantFrom('POST', 'POST', 'POST', 'OPTIONS', 'GET'),
        headers: hostileHeaders,
        body,
        chunks: chunking,
      })
      .map(({ fn, eventType, method, headers, body: b, chunks }): Sent => ({
        method,
        url: `${hostUrl}/runtime/webhooks/EventGrid?functionName=${encodeURIComponent(fn)}`,
        headers: { ...headers, 'content-type': 'application/json', ...(eventType ? { 'aeg-event-type': eventType } : {}) },
        body: b,
        chunks,
      }));
    await check(requests);
  }, 300_000);

  it("the local Event Grid's routes", async () => {
    const grid = stack.eventGrid.url;
    const topicKey = stack.env.KEYTURN_EVENTGRID_KEY ?? '';
    const withKey = (arb: fc.Arbitrary<Sent>) =>
      fc.tuple(arb, fc.boolean()).map(([req, keyed]): Sent => (keyed ? { ...req, headers: { ...req.headers, 'aeg-sas-key': topicKey } } : req));
    const routes: Array<[fc.Arbitrary<string>, fc.Arbitrary<string>]> = [
      [fc.constantFrom('POST', 'GET'), queryString.map((q) => `${grid}/api/events${q}`)],
      [fc.constant('GET'), fc.tuple(pathSegment, queryString).map(([n, q]) => `${grid}/eventsubscriptions/${n}/validate${q}`)],
      [fc.constantFrom('GET', 'POST'), queryString.map((q) => `${grid}/management/subscriptions${q}`)],
      [fc.constantFrom('GET', 'DELETE'), pathSegment.map((n) => `${grid}/management/subscriptions/${n}`)],
      [fc.constant('GET'), queryString.map((q) => `${grid}/management/deliveries${q}`)],
      [fc.constant('GET'), fc.constantFrom('/management/deadletters', '/management/health', '/%zz', '//[bad', '/management/%E0%A4%A').map((p) => `${grid}${p}`)],
      [fc.constant('POST'), queryString.map((q) => `${grid}/management/events${q}`)],
    ];
    for (const [method, url] of routes) await check(withKey(common(method, url)), stack.ca);
  }, 300_000);

  // Last: a generated request with a valid token may delete or create what the app relies on.
  it("the Key Vault emulator's routes, both vaults, with a principal's token and without", async () => {
    const name = fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES).map(encodeURIComponent), pathSegment);
    const version = fc.oneof(fc.constant(''), fc.uuid().map((u) => u.replace(/-/g, '')), pathSegment);
    const operation = fc.constantFrom('sign', 'verify', 'encrypt', 'decrypt', 'wrapkey', 'unwrapkey', 'release', 'constructor', '');
    const path = fc.oneof(
      fc.constantFrom('secrets', 'keys', 'deletedsecrets', 'deletedkeys', 'secrets/restore', 'keys/restore', 'constructor', '', '%zz'),
      fc.tuple(fc.constantFrom('secrets', 'keys', 'deletedsecrets', 'deletedkeys'), name).map(([c, n]) => `${c}/${n}`),
      fc.tuple(fc.constantFrom('secrets', 'keys'), name, fc.constantFrom('versions', 'backup', 'create', 'rotate', 'rotationpolicy', 'import')).map(([c, n, v]) => `${c}/${n}/${v}`),
      fc.tuple(fc.constantFrom('deletedsecrets', 'deletedkeys'), name).map(([c, n]) => `${c}/${n}/recover`),
      fc.tuple(fc.constantFrom('secrets', 'keys'), name, version).map(([c, n, v]) => `${c}/${n}/${v}`),
      fc.tuple(name, version, operation).map(([n, v, o]) => `keys/${n}/${v}/${o}`),
    );
    const apiVersion = fc.constantFrom('?api-version=7.5', '?api-version=7.4', '?api-version=constructor', '');
    const query = fc.tuple(apiVersion, queryString).map(([a, q]) => (a && q ? `${a}&${q.slice(1)}` : a || q));
    const token = fc.constantFrom(undefined, 'Bearer x', 'Bearer constructor', 'Basic abc', ...['operator', 'contoso-admin', 'keyturn-app', 'intruder'].map((p) => `Bearer ${tokenFor(p)}`));
    const withToken = (arb: fc.Arbitrary<Sent>) =>
      fc.tuple(arb, token).map(([req, auth]): Sent => (auth ? { ...req, headers: { ...req.headers, authorization: auth } } : req));
    const method = fc.constantFrom('GET', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS');
    for (const vault of [stack.keyVault.url, stack.vaults['contoso-byok']!.url]) {
      const url = fc.tuple(path, query).map(([p, q]) => `${vault}/${p}${q}`);
      await check(withToken(common(method, url)), stack.ca, { notImplemented: true });
    }
    // The management API (the clock, its listeners, health, faults): no token needed. Clock moves
    // are kept small; an absurd one must be a 400 that moves nothing.
    const seconds = fc.constantFrom('1', '0', '-1', '1e400', 'NaN', '0x10', '1e15', '99999999999999', '', 'constructor');
    const management = fc.oneof(
      fc.constantFrom('management', 'management/vault', 'management/vault/time', 'management/vault/time/listeners', 'management/health', 'management/faults', 'management/constructor', 'management/%zz', 'management/vault/time/all'),
      seconds.map((n) => `management/vault/time/all?seconds=${n}`),
      fc.tuple(pathSegment, queryString).map(([p, q]) => `management/${p}${q}`),
    );
    // Always tried: a move past the last representable date must be refused, not break the clock.
    for (const n of ['1e15', '99999999999999', '1e400']) {
      const before = await fingerprint();
      const res = await send({ method: 'PUT', url: `${stack.keyVault.url}/management/vault/time/all?seconds=${n}`, headers: {}, body: Buffer.alloc(0), chunks: null }, stack.ca);
      expect([res.status, await fingerprint()]).toEqual([400, before]);
    }
    const raw = fc.constantFrom('//[bad', '/%zz', '/secrets/%E0%A4%A', '/keys//sign', '/management//time');
    const url = fc.oneof(management.map((p) => `${stack.keyVault.url}/${p}`), raw.map((p) => `${stack.keyVault.url}${p}`));
    // Listener changes would need an http(s) url in the body, which hostileBody never holds.
    await check(withToken(common(method, url)), stack.ca, { notImplemented: true });
  }, 600_000);
});
