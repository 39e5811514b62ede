/**
 * ASP.NET-style route templates as the Functions host uses them (pure, no I/O):
 * `{id}`, `{id?}`, `{id:int}`, `{*rest}`, `{x=default}`, complex segments like `{name}.{ext}`.
 * Matching is case-insensitive, a trailing slash is allowed, and candidates are tried in
 * ASP.NET inbound precedence order (literal before constrained parameter before parameter
 * before catch-all), with the HTTP method acting as a route constraint (so a wrong method is 404).
 */

type Constraint = (value: string) => boolean;

interface LiteralPart {
  kind: 'literal';
  text: string;
}

interface ParamPart {
  kind: 'param';
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue?: string;
  constraints: Constraint[];
  constraintText: string[];
}

type Part = LiteralPart | ParamPart;

interface Segment {
  parts: Part[];
  /** For complex (multi-part) segments; greedy groups match the way ASP.NET does (right to left). */
  regex?: RegExp;
  fallback?: RegExp;
}

export interface RouteTemplate {
  template: string;
  segments: Segment[];
  precedence: number[];
}

const INT32 = { min: -2147483648n, max: 2147483647n };
const INT64 = { min: -9223372036854775808n, max: 9223372036854775807n };

function toBigInt(value: string): bigint | undefined {
  return /^[+-]?\d+$/.test(value) ? BigInt(value) : undefined;
}

function inRange(value: string, range: { min: bigint; max: bigint }): boolean {
  const n = toBigInt(value);
  return n !== undefined && n >= range.min && n <= range.max;
}

const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numberArgs(name: string, args: string | undefined, count: number[]): number[] {
  const values = (args ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (!count.includes(values.length) || values.some((v) => !Number.isFinite(v))) {
    throw new Error(`The constraint '${name}(${args ?? ''})' needs ${count.join(' or ')} numeric argument(s).`);
  }
  return values;
}

function buildConstraint(name: string, args: string | undefined): Constraint {
  switch (name.toLowerCase()) {
    case 'int':
      return (v) => inRange(v, INT32);
    case 'long':
      return (v) => inRange(v, INT64);
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'guid':
      return (v) =>
        /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[)}]?$/i.test(v);
    case 'alpha':
      return (v) => /^[a-z]*$/i.test(v);
    case 'double':
    case 'float':
      return (v) => FLOAT.test(v);
    case 'decimal':
      return (v) => /^[+-]?(\d+\.?\d*|\.\d+)$/.test(v);
    case 'datetime':
      return (v) => !Number.isNaN(Date.parse(v));
    case 'min': {
      const [min] = numberArgs(name, args, [1]) as [number];
      return (v) => toBigInt(v) !== undefined && Number(v) >= min;
    }
    case 'max': {
      const [max] = numberArgs(name, args, [1]) as [number];
      return (v) => toBigInt(v) !== undefined && Number(v) <= max;
    }
    case 'range': {
      const [min, max] = numberArgs(name, args, [2]) as [number, number];
      return (v) => toBigInt(v) !== undefined && Number(v) >= min && Number(v) <= max;
    }
    case 'length': {
      const n = numberArgs(name, args, [1, 2]);
      return n.length === 1 ? (v) => v.length === n[0] : (v) => v.length >= (n[0] as number) && v.length <= (n[1] as number);
    }
    case 'minlength': {
      const [min] = numberArgs(name, args, [1]) as [number];
      return (v) => v.length >= min;
    }
    case 'maxlength': {
      const [max] = numberArgs(name, args, [1]) as [number];
      return (v) => v.length <= max;
    }
    case 'regex': {
      // ASP.NET's regex constraint is case-insensitive and not anchored implicitly.
      const re = new RegExp(args ?? '', 'i');
      return (v) => re.test(v);
    }
    default:
      throw new Error(`Unknown route constraint '${name}'.`);
  }
}

/** Parses the inside of `{...}`. */
function parseParameter(inner: string, template: string): ParamPart {
  let text = inner.trim();
  let catchAll = false;
  if (text.startsWith('**')) {
    catchAll = true;
    text = text.slice(2);
  } else if (text.startsWith('*')) {
    catchAll = true;
    text = text.slice(1);
  }
  const nameMatch = /^[^:=?]+/.exec(text);
  if (!nameMatch) throw new Error(`Route template '${template}' has a parameter without a name.`);
  const name = nameMatch[0].trim();
  let rest = text.slice(nameMatch[0].length);
  const constraints: Constraint[] = [];
  const constraintText: string[] = [];
  while (rest.startsWith(':')) {
    rest = rest.slice(1);
    const cname = /^[A-Za-z]+/.exec(rest)?.[0] ?? '';
    rest = rest.slice(cname.length);
    let args: string | undefined;
    if (rest.startsWith('(')) {
      // Find the matching ')' so regex constraints may contain parentheses.
      let depth = 0;
      let end = -1;
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '\\') {
          i++;
          continue;
        }
        if (rest[i] === '(') depth++;
        else if (rest[i] === ')' && --depth === 0) {
          end = i;
          break;
        }
      }
      if (end < 0) throw new Error(`Route template '${template}' has an unclosed constraint argument.`);
      // Braces are doubled inside templates ("\\d{{3}}"), as in ASP.NET.
      args = rest.slice(1, end).replace(/\{\{/g, '{').replace(/\}\}/g, '}');
      rest = rest.slice(end + 1);
    }
    if (!cname) throw new Error(`Route template '${template}' has an empty constraint on '${name}'.`);
    constraints.push(buildConstraint(cname, args));
    constraintText.push(args === undefined ? cname : `${cname}(${args})`);
  }
  let optional = false;
  let defaultValue: string | undefined;
  if (rest.startsWith('=')) defaultValue = rest.slice(1);
  else if (rest === '?') optional = true;
  else if (rest !== '') throw new Error(`Route template '${template}' has an invalid parameter '{${inner}}'.`);
  if (catchAll && optional) throw new Error(`A catch-all parameter cannot be marked optional in '${template}'.`);
  return { kind: 'param', name, optional, catchAll, constraints, constraintText, ...(defaultValue !== undefined ? { defaultValue } : {}) };
}

function parseSegment(text: string, template: string): Segment {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (c === '{') {
      const end = findParamEnd(text, i);
      if (end < 0) throw new Error(`Route template '${template}' has an unclosed '{'.`);
      if (literal) parts.push({ kind: 'literal', text: literal });
      literal = '';
      parts.push(parseParameter(text.slice(i + 1, end), template));
      i = end;
    } else if (c === '}') {
      throw new Error(`Route template '${template}' has an unmatched '}'.`);
    } else literal += c;
  }
  if (literal) parts.push({ kind: 'literal', text: literal });
  if (parts.length > 1) {
    for (let i = 1; i < parts.length; i++) {
      if (parts[i]?.kind === 'param' && parts[i - 1]?.kind === 'param') {
        throw new Error(`Route template '${template}' has two consecutive parameters in one segment.`);
      }
    }
    const toSource = (list: Part[]): string =>
      list
        .map((part) => (part.kind === 'literal' ? part.text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') : '(.+)'))
        .join('');
    const last = parts[parts.length - 1];
    const segment: Segment = { parts, regex: new RegExp(`^${toSource(parts)}$`, 'i') };
    // "{name}.{ext?}": without the optional last parameter its separating literal goes too.
    if (last?.kind === 'param' && last.optional && parts[parts.length - 2]?.kind === 'literal') {
      segment.fallback = new RegExp(`^${toSource(parts.slice(0, -2))}$`, 'i');
    }
    return segment;
  }
  return { parts };
}

function findParamEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === '}' && depth <= 0) return i;
  }
  return -1;
}

function precedenceDigit(segment: Segment): number {
  if (segment.parts.length > 1) return 2;
  const part = segment.parts[0];
  if (!part || part.kind === 'literal') return 1;
  const digit = part.catchAll ? 5 : 3;
  return part.constraints.length > 0 ? digit - 1 : digit;
}

export function parseRouteTemplate(template: string): RouteTemplate {
  const trimmed = template.trim().replace(/^~?\/+/, '').replace(/\/+$/, '');
  const texts = trimmed === '' ? [] : trimmed.split('/');
  const segments = texts.map((t) => {
    if (t === '') throw new Error(`Route template '${template}' has an empty segment.`);
    return parseSegment(t, template);
  });
  segments.forEach((segment, i) => {
    for (const part of segment.parts) {
      if (part.kind === 'param' && part.catchAll && (i !== segments.length - 1 || segment.parts.length > 1)) {
        throw new Error(`A catch-all parameter can only be the last segment of '${template}'.`);
      }
    }
  });
  const names = segments.flatMap((s) => s.parts.filter((p): p is ParamPart => p.kind === 'param').map((p) => p.name.toLowerCase()));
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`Route template '${template}' uses the parameter '${duplicate}' twice.`);
  return { template: trimmed, segments, precedence: segments.map(precedenceDigit) };
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Splits a URL path (already without the route prefix) into decoded segments. */
export function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+/, '').replace(/\/$/, '');
  return trimmed === '' ? [] : trimmed.split('/').map(decodeSegment);
}

function checkParam(part: ParamPart, value: string): boolean {
  return part.constraints.every((c) => c(value));
}

/** Returns the route values (undefined for an absent optional parameter), or null when no match. */
export function matchTemplate(route: RouteTemplate, pathSegments: string[]): Record<string, string | undefined> | null {
  const values: Record<string, string | undefined> = {};
  const { segments } = route;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as Segment;
    const value = pathSegments[i];
    const only = segment.parts.length === 1 ? segment.parts[0] : undefined;

    if (only?.kind === 'param' && only.catchAll) {
      const rest = pathSegments.slice(i).join('/');
      if (rest === '') values[only.name] = only.defaultValue;
      else if (!checkParam(only, rest)) return null;
      else values[only.name] = rest;
      return values;
    }

    if (value === undefined) {
      // Missing trailing segments are fine only if every remaining one is optional or defaulted.
      for (const s of segments.slice(i)) {
        const p = s.parts.length === 1 ? s.parts[0] : undefined;
        if (!p || p.kind !== 'param' || !(p.optional || p.defaultValue !== undefined || p.catchAll)) return null;
        values[p.name] = p.defaultValue;
      }
      return values;
    }

    if (only?.kind === 'literal') {
      if (only.text.toLowerCase() !== value.toLowerCase()) return null;
    } else if (only?.kind === 'param') {
      if (value === '' || !checkParam(only, value)) return null;
      values[only.name] = value;
    } else if (segment.regex) {
      const m = segment.regex.exec(value) ?? segment.fallback?.exec(value);
      if (!m) return null;
      let group = 1;
      for (const part of segment.parts) {
        if (part.kind !== 'param') continue;
        const captured = m[group++];
        if (captured === undefined || captured === '') {
          if (!part.optional && part.defaultValue === undefined) return null;
          values[part.name] = part.defaultValue;
        } else {
          if (!checkParam(part, captured)) return null;
          values[part.name] = captured;
        }
      }
    } else if (value !== '') return null;
  }
  return pathSegments.length > segments.length ? null : values;
}

/** Negative when `a` must be tried before `b` (ASP.NET inbound precedence, digit by digit). */
export function comparePrecedence(a: RouteTemplate, b: RouteTemplate): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < length; i++) {
    const da = a.precedence[i] ?? 0;
    const db = b.precedence[i] ?? 0;
    if (da !== db) return da - db;
  }
  return a.template.toLowerCase().localeCompare(b.template.toLowerCase());
}

export interface RouteEntry<T> {
  route: RouteTemplate;
  methods: string[];
  value: T;
}

export interface RouteMatch<T> {
  value: T;
  params: Record<string, string>;
}

export class RouteTable<T> {
  readonly #entries: RouteEntry<T>[] = [];

  add(template: string, methods: string[], value: T): RouteTemplate {
    const route = parseRouteTemplate(template);
    this.#entries.push({ route, methods: methods.map((m) => m.toUpperCase()), value });
    // Stable sort keeps registration order between equal templates.
    this.#entries.sort((x, y) => comparePrecedence(x.route, y.route));
    return route;
  }

  get entries(): readonly RouteEntry<T>[] {
    return this.#entries;
  }

  match(method: string, path: string): RouteMatch<T> | null {
    const segments = splitPath(path);
    const upper = method.toUpperCase();
    for (const entry of this.#entries) {
      if (!entry.methods.includes(upper)) continue;
      const values = matchTemplate(entry.route, segments);
      if (!values) continue;
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(values)) if (v !== undefined) params[k] = v;
      return { value: entry.value, params };
    }
    return null;
  }
}
