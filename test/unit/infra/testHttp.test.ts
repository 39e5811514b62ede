/**
 * test.http (VS Code REST Client / JetBrains HTTP client) stays current: every HTTP route the
 * app registers has a request there with its method, and the webhook sample is an event the
 * app accepts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readKeyVaultEvent } from '../../../shared/domain/keyVaultEvent';
import { appSources, findHttpRegistrations, normalizeRoute, repoRoot } from './httpRegistrations';

interface HttpRequest {
  method: string;
  /** The URL after `{{host}}`, query included. */
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** Requests of an .http file: blocks between `###` lines; a request line, headers, a blank line, the body. */
function parseHttpFile(text: string): { variables: Record<string, string>; requests: HttpRequest[] } {
  const variables: Record<string, string> = {};
  const requests: HttpRequest[] = [];
  for (const block of text.split(/^###.*$/m)) {
    const lines = block.split(/\r?\n/);
    let i = 0;
    const skip = () => {
      while (i < lines.length && (/^\s*(#|\/\/)/.test(lines[i]!) || lines[i]!.trim() === '' || /^@\w+\s*=/.test(lines[i]!))) {
        const v = /^@(\w+)\s*=\s*(.*)$/.exec(lines[i]!);
        if (v) variables[v[1]!] = v[2]!.trim();
        i++;
      }
    };
    skip();
    const start = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\s+\{\{host\}\}(\S+)(\s+HTTP\/[\d.]+)?\s*$/.exec(lines[i] ?? '');
    if (!start) continue;
    i++;
    const headers: Record<string, string> = {};
    for (; i < lines.length && lines[i]!.trim() !== ''; i++) {
      const h = /^([\w-]+):\s*(.*)$/.exec(lines[i]!);
      if (h) headers[h[1]!.toLowerCase()] = h[2]!;
    }
    requests.push({ method: start[1]!, path: start[2]!, headers, body: lines.slice(i).join('\n').trim() });
  }
  return { variables, requests };
}

/** `credentials/{vault}/{name}/renew` → a pattern for `/api/credentials/…/…/renew` (variables or values). */
function routePattern(route: string): RegExp {
  const parts = normalizeRoute(route).split('/').map((seg) => (/^\{[^}]+\}$/.test(seg) ? '[^/?]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^/api/${parts.join('/')}(\\?.*)?$`, 'i');
}

const file = parseHttpFile(readFileSync(join(repoRoot, 'test.http'), 'utf8'));
const registrations = appSources().flatMap((s) => findHttpRegistrations(s.text, s.path));

describe('test.http', () => {
  test('the parser reads the requests and the @host variable', () => {
    expect(file.variables.host).toMatch(/^http:\/\/127\.0\.0\.1:7071$/);
    expect(file.requests.length).toBeGreaterThanOrEqual(registrations.length);
    expect(registrations.length).toBeGreaterThan(0);
  });

  test.each(registrations.map((r) => [r.name, r] as const))('has a request for %s', (_name, reg) => {
    const pattern = routePattern(reg.route ?? reg.name ?? '');
    const matching = file.requests.filter((r) => pattern.test(r.path));
    expect(matching.map((r) => r.method)).toEqual(expect.arrayContaining(reg.methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS')));
    // Keyed routes carry the function key header (ignored locally, required in Azure).
    if (reg.authLevel !== 'anonymous') {
      for (const r of matching) expect(r.headers['x-functions-key']).toBe('{{functionKey}}');
    }
  });

  test('has a Key Vault event for the webhook that the app reads as one', () => {
    const hook = file.requests.find((r) => r.path.startsWith('/runtime/webhooks/EventGrid?functionName=keyVaultEvents'));
    expect(hook?.method).toBe('POST');
    expect(hook?.headers['aeg-event-type']).toBe('Notification');
    const events = JSON.parse(hook!.body) as unknown[];
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(readKeyVaultEvent(e)).toMatchObject({ ok: true, event: { objectType: 'Secret', kind: 'SecretNearExpiry' } });
  });

  test('every request path leads to a registered route or the webhook (no stale entries)', () => {
    const patterns = registrations.map((r) => routePattern(r.route ?? r.name ?? ''));
    for (const r of file.requests) {
      if (r.path.startsWith('/runtime/webhooks/')) continue;
      expect([r.path, patterns.some((p) => p.test(r.path))]).toEqual([r.path, true]);
    }
  });
});
