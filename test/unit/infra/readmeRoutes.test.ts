/**
 * README's HTTP API table stays current: every route the app registers has a row naming
 * it (`/api/{route}` with the same parameter names), so a user reading the README sees
 * every route there is.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appSources, findHttpRegistrations, normalizeRoute, repoRoot } from './httpRegistrations';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('\n## ', readme.indexOf('## HTTP API') + 1));
/** The paths in the table's first column, lower-cased, query strings dropped. */
const documented = new Set(
  [...section.matchAll(/^\| ([^|]+) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`(?:[A-Z]+(?:, [A-Z]+)* )?\/api\/([^`?[\s]+)/g)].map((m) => normalizeRoute(m[1]!))),
);
const registered = [...new Set(appSources().flatMap((s) => findHttpRegistrations(s.text, s.path)).map((r) => normalizeRoute(r.route ?? r.name ?? '')))];

describe("README's HTTP API table", () => {
  test('the table is found and names routes', () => {
    expect(section.startsWith('## HTTP API')).toBe(true);
    expect(documented.size).toBeGreaterThan(10);
    expect(registered.length).toBeGreaterThan(10);
  });

  test.each(registered)('has a row for %s', (route) => {
    expect(documented.has(route)).toBe(true);
  });
});
