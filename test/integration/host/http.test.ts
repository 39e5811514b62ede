import { startHostProcess, type HostProcess } from '../../helpers/host';
import { EffectsFile } from './fixtureEffects';

interface Echo {
  functionName: string;
  method: string;
  url: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string | null;
}

describe('local host: HTTP functions', () => {
  let host: HostProcess;
  const effects = new EffectsFile();

  beforeAll(async () => {
    host = await startHostProcess({
      env: { LOCALHOST_DISABLE_TIMERS: 'true', FIXTURE_EFFECTS_FILE: effects.path, FIXTURE_OVERRIDDEN: 'from the environment' },
    });
  });
  afterAll(async () => {
    await host?.stop();
    effects.remove();
  });

  async function call(path: string, init?: RequestInit): Promise<{ status: number; echo?: Echo; res: Response; text: string }> {
    const res = await fetch(`${host.url}${path}`, init);
    const text = await res.text();
    const echo = res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Echo) : undefined;
    return { status: res.status, res, text, ...(echo ? { echo } : {}) };
  }

  it('serves functions under /api with route parameters, case-insensitively, trailing slash allowed', async () => {
    const a = await call('/api/echo/Abc');
    expect(a.status).toBe(200);
    expect(a.echo?.functionName).toBe('echo');
    expect(a.echo?.params).toEqual({ id: 'Abc' });
    expect(a.echo?.url).toBe(`${host.url}/api/echo/Abc`);

    const b = await call('/API/ECHO/');
    expect(b.echo?.functionName).toBe('echo');
    expect(b.echo?.params).toEqual({});
  });

  it('uses the function name as the default route', async () => {
    expect((await call('/api/defaultroute')).echo?.functionName).toBe('DefaultRoute');
  });

  it('lets literal segments win over parameters and applies constraints', async () => {
    expect((await call('/api/items/special')).echo?.functionName).toBe('itemSpecial');
    const byId = await call('/api/items/42');
    expect(byId.echo?.functionName).toBe('itemById');
    expect(byId.echo?.params).toEqual({ id: '42' });
    expect((await call('/api/items/forty-two')).echo?.functionName).toBe('itemByName');
  });

  it('supports catch-all, default values and complex segments', async () => {
    const files = await call('/api/files/a/b%20c/d.txt');
    expect(files.echo?.params).toEqual({ rest: 'a/b c/d.txt' });
    expect((await call('/api/greet')).echo?.params).toEqual({ who: 'world' });
    expect((await call('/api/greet/ann')).echo?.params).toEqual({ who: 'ann' });
    expect((await call('/api/docs/notes.v2.md')).echo?.params).toEqual({ name: 'notes.v2', ext: 'md' });
  });

  it('treats the method as a route constraint: another function may own it, otherwise 404', async () => {
    const del = await call('/api/items/42', { method: 'DELETE' });
    expect(del.echo?.functionName).toBe('itemDelete');
    expect((await call('/api/items/special', { method: 'DELETE' })).status).toBe(404);
    expect((await call('/api/only-get', { method: 'POST' })).status).toBe(404);
    expect((await call('/api/only-get')).status).toBe(200);
  });

  it('answers 404 for unknown routes, constraint misses and disabled functions', async () => {
    expect((await call('/api/no-such-route')).status).toBe(404);
    expect((await call('/api/status/700')).status).toBe(404);
    expect((await call('/echo/1')).status).toBe(404);
    expect((await call('/api/disabled')).status).toBe(404);
  });

  it('answers 500 with an empty body when the function throws', async () => {
    const r = await call('/api/throws');
    expect(r.status).toBe(500);
    expect(r.text).toBe('');
    await host.waitForLine(/Executed 'Functions\.throws' \(Failed, Id=[0-9a-f-]{36}, Duration=\d+ms\)/);
  });

  it('answers 200 with an empty body when the function returns nothing', async () => {
    const r = await call('/api/nothing', { method: 'POST', body: 'x' });
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
  });

  it('passes status, headers and cookies of the response', async () => {
    const r = await call('/api/status/418');
    expect(r.status).toBe(418);
    expect(r.text).toBe('status 418');
    expect(r.res.headers.get('x-fixture')).toBe('yes');
    expect(r.res.headers.get('set-cookie')).toMatch(/^session=abc; Path=\/; HttpOnly/);
  });

  it('joins repeated query keys with commas and lower-cases header names', async () => {
    const r = await call('/api/echo?x=1&x=2&other=y', { headers: { 'X-Custom-Header': 'Value' } });
    expect(r.echo?.query).toEqual({ x: '1,2', other: 'y' });
    expect(r.echo?.headers['x-custom-header']).toBe('Value');
    expect(Object.keys(r.echo?.headers ?? {}).every((k) => k === k.toLowerCase())).toBe(true);
  });

  it('forwards a body sent with Content-Length or chunked (issue 9: a streamed body is read, not dropped)', async () => {
    const withLength = await call('/api/echo', { method: 'POST', body: 'hello body', headers: { 'content-type': 'text/plain' } });
    expect(withLength.echo?.body).toBe('hello body');

    const chunked = await call('/api/echo', {
      method: 'POST',
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('streamed'));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(chunked.echo?.body).toBe('streamed');

    const empty = await call('/api/echo', { method: 'POST' });
    expect(empty.echo?.body).toBeNull();
  });

  it('loads local.settings.json values without overriding the environment', async () => {
    const r = await call('/api/settings');
    expect(JSON.parse(r.text)).toEqual({ greeting: 'hello from local.settings', overridden: 'from the environment' });
  });

  it('logs func-style Executing/Executed lines and user logs through log hooks', async () => {
    const marker = `m-${Date.now()}`;
    expect((await call(`/api/logs?marker=${marker}`)).status).toBe(200);
    const executing = await host.waitForLine(/Executing 'Functions\.logs' \(Reason='[^']+', Id=[0-9a-f-]{36}\)/);
    const id = /Id=([0-9a-f-]{36})/.exec(executing)?.[1];
    await host.waitForLine(new RegExp(`Executed 'Functions\\.logs' \\(Succeeded, Id=${id}, Duration=\\d+ms\\)`));
    await host.waitForLine(`[hooked] user log line ${marker}`);
  });

  it('runs preInvocation and postInvocation hooks around each invocation', async () => {
    await call('/api/greet/hooks');
    const pre = effects.of('preInvocation', 'greet');
    const post = effects.of('postInvocation', 'greet');
    expect(pre.length).toBeGreaterThan(0);
    expect(post.length).toBeGreaterThan(0);
    expect(post.every((p) => p.sawPre === true)).toBe(true);
  });
});

describe('local host: route prefix from host.json overrides', () => {
  it.each([
    ['', '/echo/1'],
    ['v1', '/v1/echo/1'],
  ])('routePrefix %j serves %s', async (prefix, path) => {
    const host = await startHostProcess({
      env: { LOCALHOST_DISABLE_TIMERS: 'true', AzureFunctionsJobHost__extensions__http__routePrefix: prefix },
    });
    try {
      const res = await fetch(`${host.url}${path}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).params).toEqual({ id: '1' });
      expect((await fetch(`${host.url}/api/echo/1`)).status).toBe(404);
      // Admin and webhook URLs are never prefixed.
      expect((await fetch(`${host.url}/admin/host/status`)).status).toBe(200);
    } finally {
      await host.stop();
    }
  });
});
