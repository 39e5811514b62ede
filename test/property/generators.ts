/**
 * fast-check generators for hostile input, shared by the property suites: names that are
 * Object.prototype members, deep nesting, huge and odd strings, invalid UTF-8, wrong
 * content types. `FUZZ_RUNS` (see `npm run fuzz`) scales how many cases each property tries.
 */
import fc from 'fast-check';

/** Runs per property: small in CI, larger with `npm run fuzz` (FUZZ_RUNS=…). */
export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? '') || 25);

export const PROTOTYPE_NAMES = [
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  'prototype',
] as const;

/** A text nested `levels` deep, as objects or arrays. */
export function nestedText(levels: number, kind: 'object' | 'array' = 'object', leaf = '1'): string {
  return kind === 'object' ? `${'{"a":'.repeat(levels)}${leaf}${'}'.repeat(levels)}` : `${'['.repeat(levels)}${leaf}${']'.repeat(levels)}`;
}

/** Strings a handler might stumble on: prototype names, control and astral characters, lone surrogates, huge. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...PROTOTYPE_NAMES),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', ' ', '..', '.', '\u0000', '\ud800', 'a\u202eb', '%', '%zz', '${x}', '{{x}}', '../../etc/passwd', 'null', 'undefined', '1e309', '-0'),
  fc.integer({ min: 1_000, max: 70_000 }).map((n) => 'x'.repeat(n)),
);

/** Keys of JSON objects: mostly prototype names, so every lookup keyed by input is exercised. */
const jsonKey: fc.Arbitrary<string> = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });

/** JSON values whose object keys are often prototype names. */
export const hostileJsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    oddString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(jsonKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** JSON text of an object, built so a `__proto__` key survives as data (fc.dictionary would not keep it). */
export function objectText(entries: Array<[string, unknown]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
}

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/cloudevents+json',
  'application/cloudevents-batch+json',
  'application/xml',
  '*/*',
  'application/octet-stream',
] as const;

/** A request body as bytes: hostile JSON, deep nesting, huge, non-JSON, invalid UTF-8, or empty. */
export const hostileBody: fc.Arbitrary<Buffer> = fc.oneof(
  hostileJsonValue.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.array(fc.tuple(jsonKey, hostileJsonValue), { maxLength: 5 }).map((e) => Buffer.from(objectText(e))),
  fc.constantFrom(60, 63, 64, 65, 70, 200, 3_000, 20_000).chain((n) =>
    fc.constantFrom<'object' | 'array'>('object', 'array').map((kind) => Buffer.from(nestedText(n, kind))),
  ),
  fc.constantFrom(
    '',
    '{',
    'null',
    '[]',
    '"x"',
    '{"__proto__":{"sub":"x","aud":"y"}}',
    '{"claims":{"__proto__":{"sub":"x","aud":"y"}}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
  ).map((t) => Buffer.from(t)),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(b)])),
  fc.integer({ min: 60_000, max: 300_000 }).map((n) => Buffer.from(`{"reason":"${'y'.repeat(n)}"}`)),
);

/*
 * Sizes stay under Node's 16 KB header limit (the host answers 431 and drops the connection
 * beyond it, as Kestrel answers 414/431), so what is fuzzed is the handlers, not the parser.
 */

/** A URL path segment (at most 1,000 characters), percent-encoded, or raw malformed encoding. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: oddString.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x')).slice(0, 1_000) || 'x') },
  { weight: 1, arbitrary: fc.constantFrom('%zz', '%E0%A4%A', '%00', '%2F', '..', '.', '%2e%2e', '%C0%AF') },
);

/** A query string: prototype-named keys, repeats, malformed encoding. */
export const queryString: fc.Arbitrary<string> = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES, 'top', 'continuationToken', 'functionName'), fc.string({ maxLength: 8 })), oddString), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, 'x')).slice(0, 600)}`))
  .chain((parts) => fc.constantFrom('', '&%zz', '&=', '&a=%E0%A4%A').map((junk) => (parts.length + junk.length > 0 ? `?${parts.join('&')}${junk}` : '')));

/** Header values a client can send (visible ASCII and spaces). */
const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...PROTOTYPE_NAMES),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '').trim()),
  fc.integer({ min: 100, max: 1_500 }).map((n) => 'h'.repeat(n)),
);

/** Extra headers: prototype-named ones, and the ones the app and the webhook read. */
export const hostileHeaders: fc.Arbitrary<Record<string, string>> = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'constructor',
        '__proto__',
        'tostring',
        'hasownproperty',
        'x-ms-client-principal-name',
        'x-ms-client-principal',
        'idempotency-key',
        'aeg-event-type',
        'aeg-sas-key',
        'aeg-sas-token',
        'webhook-request-origin',
        'accept',
        'if-match',
      ),
      headerValue,
    ),
    { maxLength: 4 },
  )
  .map((pairs) => {
    const headers: Record<string, string> = Object.create(null);
    for (const [k, v] of pairs) headers[k] = v;
    return headers;
  });

export const contentType: fc.Arbitrary<string | undefined> = fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined });

/** How the body travels: with Content-Length, or chunked in pieces. */
export const chunking: fc.Arbitrary<number | null> = fc.option(fc.integer({ min: 1, max: 4 }), { nil: null });
