import { z } from 'zod';
import { lazySchema } from '../../../shared/domain/lazySchema';

describe('When a schema is wrapped in lazySchema', () => {
  test('then nothing is built until its first use, and it is built once', () => {
    let built = 0;
    const name = lazySchema(() => (built++, z.string().trim().min(2)));
    expect(built).toBe(0);
    expect(name.parse(' ab ')).toBe('ab');
    expect(name.safeParse('a').success).toBe(false);
    expect(built).toBe(1);
  });

  test('then it composes like the schema itself: inside objects, optional, unions, instanceof', () => {
    const name = lazySchema(() => z.string().min(2));
    const body = lazySchema(() => z.strictObject({ name, alias: name.optional(), tags: z.array(name) }));
    expect(body.parse({ name: 'ab', tags: ['cd'] })).toEqual({ name: 'ab', tags: ['cd'] });
    const bad = body.safeParse({ name: 'a', tags: [], extra: 1 });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['', 'name']);
    expect(name).toBeInstanceOf(z.ZodString);
    expect(z.union([name, z.number()]).parse(3)).toBe(3);
    expect(Object.keys(body.shape)).toEqual(['name', 'alias', 'tags']);
  });

  test('then a lazy record of schemas answers own-key checks like the record', () => {
    const fields = lazySchema(() => ({ sub: z.string() }));
    expect(Object.hasOwn(fields, 'sub')).toBe(true);
    expect(Object.hasOwn(fields, 'toString')).toBe(false);
    expect(Object.keys(fields)).toEqual(['sub']);
  });
});
