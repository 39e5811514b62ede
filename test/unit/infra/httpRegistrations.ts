/**
 * Reads the HTTP registrations (`app.http`, `app.get`, …) of @azure/functions v4 from source text
 * with the TypeScript parser, and judges their auth level. Shared by the route guard
 * (routes.test.ts) and the test.http check (testHttp.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { listFiles } from './bicepText';

export const repoRoot = resolve(__dirname, '..', '..', '..');

/** Public by design: liveness, and what relying parties fetch without a key (DESIGN §1 item 4). */
// `tenants/{tenantid}/keys`: a tenant's published public keys (like a JWKS); routes are compared lower-cased.
const ANONYMOUS_ROUTES = new Set(['health', '.well-known/jwks.json', '.well-known/openid-configuration', 'tenants/{tenantid}/keys']);
/** Anonymous routes may only read. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** 'admin' is stricter than 'function' (master key only), so it passes too. */
const KEYED_LEVELS = new Set(['function', 'admin']);
/** @azure/functions v4 registration calls that create an HTTP trigger, with the method each shorthand implies. */
const HTTP_CALLS: Record<string, string[] | undefined> = {
  http: undefined,
  get: ['GET'],
  put: ['PUT'],
  post: ['POST'],
  patch: ['PATCH'],
  deleteRequest: ['DELETE'],
};
const DEFAULT_METHODS = ['GET', 'POST']; // library default when `methods` is omitted

export interface HttpRegistration {
  where: string;
  name?: string;
  route?: string;
  authLevel: string;
  methods: string[];
  /** Why the registration cannot be checked statically (fails the test). */
  unreadable: string[];
  /** Route or methods not literal: fine for a keyed route, unverifiable for an anonymous one. */
  unreadableIfAnonymous: string[];
}

function literal(node: ts.Expression | undefined): string | undefined {
  if (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))) return node.text;
  return undefined;
}

/** Names under which `app` from @azure/functions is reachable in this file (`app`, an alias, or `ns.app`). */
function appBindings(sf: ts.SourceFile): { direct: Set<string>; namespaces: Set<string> } {
  const direct = new Set<string>(['app']);
  const namespaces = new Set<string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || literal(st.moduleSpecifier as ts.Expression) !== '@azure/functions') continue;
    const bindings = st.importClause?.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) namespaces.add(bindings.name.text);
    if (bindings && ts.isNamedImports(bindings)) {
      for (const el of bindings.elements) if ((el.propertyName ?? el.name).text === 'app') direct.add(el.name.text);
    }
    if (st.importClause?.name) namespaces.add(st.importClause.name.text); // default import
  }
  return { direct, namespaces };
}

function isApp(expr: ts.Expression, b: ReturnType<typeof appBindings>): boolean {
  if (ts.isIdentifier(expr)) return b.direct.has(expr.text);
  return ts.isPropertyAccessExpression(expr) && expr.name.text === 'app' && ts.isIdentifier(expr.expression) && b.namespaces.has(expr.expression.text);
}

export function findHttpRegistrations(source: string, fileName: string): HttpRegistration[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const b = appBindings(sf);
  const out: HttpRegistration[] = [];

  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && isApp(node.expression.expression, b)) {
      const call = node.expression.name.text;
      const where = `${fileName}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`;
      if (call === 'generic' && /\bhttp\b/i.test(node.arguments[1]?.getText(sf) ?? '')) {
        out.push({
          where,
          authLevel: '?',
          methods: [],
          unreadable: ['app.generic with an HTTP trigger: register it with app.http so it can be checked'],
          unreadableIfAnonymous: [],
        });
      } else if (call in HTTP_CALLS) {
        out.push(readRegistration(node, call, where, sf));
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function readRegistration(node: ts.CallExpression, call: string, where: string, sf: ts.SourceFile): HttpRegistration {
  const reg: HttpRegistration = {
    where,
    authLevel: 'anonymous',
    methods: HTTP_CALLS[call] ?? DEFAULT_METHODS,
    unreadable: [],
    unreadableIfAnonymous: [],
  };
  reg.name = literal(node.arguments[0]);
  if (reg.name === undefined) reg.unreadable.push('the function name must be a string literal');
  const options = node.arguments[1];

  if (options && (ts.isArrowFunction(options) || ts.isFunctionExpression(options)) && call !== 'http') {
    return reg; // app.get(name, handler): anonymous, route = name
  }
  if (!options || !ts.isObjectLiteralExpression(options)) {
    reg.unreadable.push(`options must be an object literal (found ${options ? options.getText(sf).slice(0, 40) : 'nothing'})`);
    return reg;
  }
  let sawSpread = false;
  let sawAuthLevel = false;
  for (const prop of options.properties) {
    if (ts.isSpreadAssignment(prop)) {
      sawSpread = true;
      continue;
    }
    if (!ts.isPropertyAssignment(prop) && !ts.isShorthandPropertyAssignment(prop)) continue;
    const key = prop.name && (ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name)) ? prop.name.text : undefined;
    const init = ts.isPropertyAssignment(prop) ? prop.initializer : undefined;
    if (key === 'authLevel') {
      sawAuthLevel = true;
      const v = literal(init);
      if (v === undefined) reg.unreadable.push('authLevel must be a string literal');
      else reg.authLevel = v;
    } else if (key === 'route') {
      const v = literal(init);
      if (v === undefined) reg.unreadableIfAnonymous.push('route must be a string literal');
      else reg.route = v;
    } else if (key === 'methods') {
      if (init && ts.isArrayLiteralExpression(init) && init.elements.every((e) => literal(e) !== undefined)) {
        reg.methods = init.elements.map((e) => literal(e)!.toUpperCase());
      } else reg.unreadableIfAnonymous.push('methods must be an array of string literals');
    }
  }
  if (sawSpread && !sawAuthLevel) reg.unreadable.push('options spread another object without an explicit authLevel');
  return reg;
}

export const normalizeRoute = (route: string) => route.trim().replace(/^\/+|\/+$/g, '').toLowerCase();

/** Human-readable violations; empty when the registration is fine. */
export function violations(reg: HttpRegistration): string[] {
  if (reg.unreadable.length > 0) return reg.unreadable.map((u) => `${reg.where}: ${u}`);
  const route = normalizeRoute(reg.route ?? reg.name ?? '');
  const label = `${reg.where} '${reg.name}' (route '${route}')`;
  if (reg.authLevel === 'anonymous') {
    if (reg.unreadableIfAnonymous.length > 0) return reg.unreadableIfAnonymous.map((u) => `${label}: ${u}`);
    if (!ANONYMOUS_ROUTES.has(route)) return [`${label} is anonymous but not on the allow-list; use authLevel: 'function'`];
    const unsafe = reg.methods.filter((m) => !SAFE_METHODS.has(m.toUpperCase()));
    return unsafe.length > 0 ? [`${label} is anonymous and accepts ${unsafe.join(', ')}; declare methods: ['GET']`] : [];
  }
  return KEYED_LEVELS.has(reg.authLevel) ? [] : [`${label} has unknown authLevel '${reg.authLevel}'`];
}

/** The app's source files that may register triggers (functions/, and shared/ in case one moves there). */
export function appSources(): { path: string; text: string }[] {
  return ['functions', 'shared']
    .flatMap((dir) => listFiles(join(repoRoot, dir), '.ts'))
    .filter((f) => !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => ({ path: relative(repoRoot, f).split('\\').join('/'), text: readFileSync(f, 'utf8') }));
}
