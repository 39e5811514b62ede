import { HostLogger } from '../../../local/host/hostLogger';
import { requestUrl } from '../../../local/host/httpServer';

describe('host logger: logging never throws', () => {
  it('survives throwing, rejecting and message-mangling log hooks, and odd levels', async () => {
    const lines: string[] = [];
    const logger = new HostLogger((l) => lines.push(l), 'constructor');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const unprintable = { toString: () => { throw new Error('no'); } };
    logger.logHooks = [
      () => { throw new Error('sync hook failure'); },
      async () => { throw new Error('async hook failure'); },
    ];
    expect(() => logger.coreLog('information', 'user', 'first')).not.toThrow();
    logger.logHooks = [(ctx) => { (ctx as { message: unknown }).message = cyclic; }];
    expect(() => logger.coreLog('information', 'user', 'second')).not.toThrow();
    logger.logHooks = [(ctx) => { Object.assign(ctx as object, { message: unprintable, level: 'toString' }); }];
    expect(() => logger.coreLog('information', 'user', 'third')).not.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(lines.some((l) => l.endsWith('first'))).toBe(true);
    expect(lines.some((l) => l.includes('[object Object]'))).toBe(true);
    expect(lines.some((l) => l.includes('[unprintable log message]'))).toBe(true);
  });

  it('keeps logging when the writer throws', () => {
    const logger = new HostLogger(() => { throw new Error('EPIPE'); }, 'information');
    expect(() => logger.coreLog('error', 'system', 'x')).not.toThrow();
  });
});

describe('host request URL', () => {
  const url = (host: string | undefined, target = '/api/x') => requestUrl({ url: target, headers: host === undefined ? {} : { host } });

  it('refuses Host headers and targets that do not form a URL', () => {
    for (const host of ['[bad', 'a b', '', ':99999', '127.0.0.1:99999', 'x/y', 'a@b', 'a?b', 'a#b', 'a\\b']) expect(url(host)).toBeNull();
    expect(url('127.0.0.1', '*')).toBeNull();
    expect(url('127.0.0.1', 'mailto:x')).toBeNull();
  });

  it('keeps origin-form targets on this host, even protocol-relative ones', () => {
    expect(url('127.0.0.1:7071', '//evil.example/x')?.href).toBe('http://127.0.0.1:7071//evil.example/x');
    expect(url('[::1]:7071')?.href).toBe('http://[::1]:7071/api/x');
    expect(url(undefined)?.href).toBe('http://127.0.0.1/api/x');
    expect(url('LocalHost:80', '/a?b=1')?.href).toBe('http://localhost/a?b=1');
  });
});
