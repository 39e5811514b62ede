import fc from 'fast-check';
import { HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { stringifyJson } from '../../local/host/jsonText';
import { tokenRequestSchema } from '../../shared/domain/tokenClaims';
import { MAX_JSON_DEPTH, jsonTextExceedsDepth, prototypeKeyPath, valueExceedsDepth } from '../../shared/domain/jsonDepth';
import { ValidationError } from '../../shared/errors';
import { readJsonBody } from '../../shared/http/problem';
import { PROTOTYPE_NAMES, RUNS, hostileBody, hostileJsonValue, nestedText, objectText, oddString } from './generators';

/** The obvious recursive definition, as the reference (only used on shallow values). */
function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/** Recursive reference for prototypeKeyPath. */
function hasPrototypeKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (!Array.isArray(value) && Object.keys(value).includes('__proto__')) return true;
  return (Array.isArray(value) ? value : Object.values(value)).some(hasPrototypeKey);
}

function containsNull(value: unknown): boolean {
  if (value === null) return true;
  if (typeof value !== 'object') return false;
  return (Array.isArray(value) ? value : Object.values(value)).some(containsNull);
}

const runs = { numRuns: RUNS * 4 };

describe('jsonDepth: nesting measured without recursion', () => {
  it('agrees with the recursive definition on any JSON value, text or parsed', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, limit) => {
        const exceeds = depthOf(value) > limit;
        expect(jsonTextExceedsDepth(JSON.stringify(value), limit)).toBe(exceeds);
        expect(valueExceedsDepth(value, limit)).toBe(exceeds);
      }),
      runs,
    );
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('[', '{', '"', '\\', ']', '}', 'a') }), (s) => {
        expect(jsonTextExceedsDepth(JSON.stringify({ s }), 1)).toBe(false);
      }),
      runs,
    );
  });

  it('handles thousands of levels and cycles without a stack overflow', () => {
    expect(jsonTextExceedsDepth(nestedText(200_000), MAX_JSON_DEPTH)).toBe(true);
    expect(jsonTextExceedsDepth(nestedText(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(false);
    expect(jsonTextExceedsDepth(nestedText(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true);
    expect(valueExceedsDepth(JSON.parse(nestedText(100_000, 'array')))).toBe(true);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    expect(valueExceedsDepth(cyclic)).toBe(true);
    // A wide DAG (each level shared twice) is walked in linear time, not 2^depth.
    let shared: unknown = 1;
    for (let i = 0; i < 60; i++) shared = [shared, shared];
    expect(valueExceedsDepth(shared)).toBe(false);
  });

  it('finds a __proto__ key wherever it is, and only then', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), (value, inject) => {
        const text = inject ? `{"x":[${JSON.stringify(value)},{"__proto__":{"polluted":true}}]}` : JSON.stringify(value);
        const path = prototypeKeyPath(JSON.parse(text));
        const already = hasPrototypeKey(JSON.parse(JSON.stringify(value) ?? 'null'));
        expect(path !== null).toBe(inject || already);
        if (inject && !already) expect(path).toBe('x[1].__proto__');
      }),
      runs,
    );
  });
});

describe('stringifyJson: JSON.stringify without recursion', () => {
  it('gives the same text as JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(stringifyJson(value)).toBe(JSON.stringify(value));
      }),
      runs,
    );
    const withProto = JSON.parse('{"__proto__":{"a":1},"b":[1,{"__proto__":null}]}');
    expect(stringifyJson(withProto)).toBe(JSON.stringify(withProto));
  });

  it('serialises values far deeper than JSON.stringify can, and survives cycles', () => {
    const text = nestedText(50_000);
    expect(stringifyJson(JSON.parse(text))).toBe(text);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(stringifyJson(cyclic)).toBe('{"a":1,"self":null}');
  });
});

describe('readJsonBody: the one body reader answers 400 or parses, for any bytes', () => {
  const request = (body: Buffer) => new HttpRequest({ method: 'POST', url: 'http://localhost/api/x', body: { bytes: body } });
  const loose = z.unknown();

  it('never throws anything but a ValidationError, and refuses deep or __proto__ bodies', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBody, async (body) => {
        const text = body.toString('utf8');
        try {
          const value = await readJsonBody(request(body), loose);
          expect(jsonTextExceedsDepth(text, MAX_JSON_DEPTH)).toBe(false);
          expect(prototypeKeyPath(value)).toBeNull();
        } catch (err) {
          expect(err).toBeInstanceOf(ValidationError);
        }
      }),
      { numRuns: RUNS * 4 },
    );
    await expect(readJsonBody(request(Buffer.from(nestedText(5_000))), loose)).rejects.toMatchObject({ field: '(body)' });
    await expect(readJsonBody(request(Buffer.from('{"a":{"__proto__":{"x":1}}}')), loose)).rejects.toMatchObject({ field: 'a.__proto__' });
  });
});

describe('token claims: no claim name reaches Object.prototype', () => {
  const schema = tokenRequestSchema(3600);

  it('validates a claim named like an Object.prototype member as a custom claim, never throws', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PROTOTYPE_NAMES), hostileJsonValue, (name, value) => {
        const body = JSON.parse(`{"claims":${objectText([['sub', 's'], ['aud', 'a'], [name, value]])}}`);
        const parsed = schema.safeParse(body);
        if (name === '__proto__') {
          expect(parsed.success).toBe(false);
          return;
        }
        // Custom claims are any JSON value without null (or a `__proto__` key), kept as sent.
        expect(parsed.success).toBe(!containsNull(value) && prototypeKeyPath(value) === null);
        if (parsed.success) expect(JSON.stringify((parsed.data.claims as Record<string, unknown>)[name])).toBe(JSON.stringify(value));
      }),
      runs,
    );
  });

  it('a __proto__ key never supplies required claims or hides unknown fields', () => {
    for (const text of ['{"claims":{"__proto__":{"sub":"x","aud":"y"}}}', '{"__proto__":{"claims":{"sub":"x","aud":"y"}}}', '{"claims":{"sub":"x","aud":"y"},"__proto__":{"x":1}}']) {
      expect(schema.safeParse(JSON.parse(text)).success).toBe(false);
    }
    fc.assert(
      fc.property(oddString, (name) => {
        // Registered-claim typing applies to own names only.
        const parsed = schema.safeParse(JSON.parse(`{"claims":${objectText([['sub', 's'], ['aud', 'a'], [name, 'v']])}}`));
        if (name === '' || name.length > 256 || name === '__proto__' || ['iss', 'iat', 'exp', 'nbf', 'auth_time', 'amr', 'roles', 'groups', 'email_verified'].includes(name)) return;
        expect(parsed.success).toBe(true);
      }),
      runs,
    );
  });
});
