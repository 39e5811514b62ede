/**
 * Static guard for HTTP routes, modelled on Azure/azure-functions-nodejs-e2e-tests
 * scripts/check-sensitive-http-routes.js, but discovering registrations instead of listing files:
 * every app.http / app.get / … registration in functions/ (and shared/, in case one moves there) must
 * use authLevel 'function' unless its route is on the anonymous allow-list. The TypeScript parser
 * reads the calls, so formatting does not matter; anything it cannot read statically fails.
 */
import ts from 'typescript';
import { appSources, findHttpRegistrations, violations } from './httpRegistrations';

const check = (src: string) => findHttpRegistrations(src, 'fixture.ts').flatMap(violations);

describe('route checker (fixtures)', () => {
  const header = "import { app } from '@azure/functions';\n";

  test('accepts keyed routes and the allow-listed anonymous GET routes', () => {
    expect(
      check(
        header +
          "app.http('rotations', { route: 'rotations/{id}', methods: ['POST'], authLevel: 'function', handler });\n" +
          "app.http('health', { route: '/health', methods: ['GET'], authLevel: 'anonymous', handler });\n" +
          "app.http('jwks', { route: '.well-known/jwks.json', methods: ['GET', 'HEAD'], authLevel: 'anonymous', handler });\n" +
          "app.http('oidc', {\n  methods: ['GET'],\n  authLevel: \"anonymous\",\n  route: `.well-known/openid-configuration`,\n  handler,\n});\n" +
          "app.post('admin-op', { authLevel: 'admin', handler });\n" +
          "app.http('tenant', { route: `tenants/${prefix}/{id}`, methods: verbs, authLevel: 'function', handler });\n",
      ),
    ).toEqual([]);
  });

  test.each([
    ['an anonymous route not on the allow-list', "app.http('incidents', { route: 'incidents', methods: ['POST'], authLevel: 'anonymous', handler });"],
    ['a missing authLevel (the library defaults to anonymous)', "app.http('incidents', { route: 'incidents', methods: ['POST'], handler });"],
    ['the shorthand app.get(name, handler)', "app.get('exports', async () => ({ status: 200 }));"],
    ['an allow-listed route that also accepts POST', "app.http('health', { route: 'health', authLevel: 'anonymous', handler });"],
    ['options built elsewhere', "app.http('incidents', options);"],
    ['a computed authLevel', "app.http('incidents', { route: 'incidents', authLevel: level, handler });"],
    ['a spread without authLevel', "app.http('incidents', { ...base, route: 'incidents', handler });"],
    ['a computed route', "app.http('incidents', { route: `x/${a}`, authLevel: 'anonymous', handler });"],
    ['a name-only route that mimics an allow-listed path prefix', "app.http('health2', { methods: ['GET'], authLevel: 'anonymous', handler });"],
    ['an anonymous route with computed methods', "app.http('health', { route: 'health', methods: verbs, authLevel: 'anonymous', handler });"],
    ['an unknown authLevel', "app.http('x', { authLevel: 'user', handler });"],
    ['an HTTP trigger through app.generic', "app.generic('x', { trigger: trigger.http({ authLevel: 'anonymous' }), handler });"],
  ])('rejects %s', (_label, code) => {
    expect(check(header + code)).toHaveLength(1);
  });

  test('follows aliased and namespace imports of app', () => {
    expect(check("import { app as functions } from '@azure/functions';\nfunctions.http('x', { route: 'x', handler });")).toHaveLength(1);
    expect(check("import * as az from '@azure/functions';\naz.app.http('x', { route: 'x', handler });")).toHaveLength(1);
  });

  test('ignores other triggers and unrelated .http calls', () => {
    expect(
      check(header + "app.timer('sweep', { schedule: '%S%', handler });\napp.eventGrid('kv', { handler });\nclient.http('x', {});"),
    ).toEqual([]);
  });
});

describe('HTTP routes in the app', () => {
  const sources = appSources();
  const registrations = sources.flatMap((s) => findHttpRegistrations(s.text, s.path));

  test('the scan finds the registrations (health at least)', () => {
    expect(registrations.map((r) => r.name)).toContain('health');
  });

  test("every HTTP route uses authLevel 'function' unless it is an allow-listed anonymous GET route", () => {
    expect(registrations.flatMap(violations)).toEqual([]);
  });

  test('the parser saw every app.<http verb>( call the text contains (no registration slips past)', () => {
    const pattern = /\bapp\s*\.\s*(http|get|put|post|patch|deleteRequest)\s*\(/g;
    const printer = ts.createPrinter({ removeComments: true });
    for (const s of sources) {
      const code = printer.printFile(ts.createSourceFile(s.path, s.text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
      const textual = [...code.matchAll(pattern)].length;
      const parsed = registrations.filter((r) => r.where.startsWith(`${s.path}:`)).length;
      expect(`${s.path}: ${parsed}`).toBe(`${s.path}: ${Math.max(textual, parsed)}`);
    }
  });
});
