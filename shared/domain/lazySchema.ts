/**
 * Cold start: a zod schema costs CPU to build (every `.min()`, `.optional()`, … makes a new
 * schema object), and module load must stay registration only. `lazySchema(() => z.object(…))`
 * returns a stand-in of the same type that builds the schema on its first use (a parse, a
 * `.optional()`, being placed in another schema) and forwards everything to it after that.
 * So a module-level schema is wrapped, and nothing that uses it changes:
 *
 *   const bodySchema = lazySchema(() => z.strictObject({ reason: z.string().min(1) }));
 *   readJsonBody(request, bodySchema);   // built here, at the first request
 *
 * Schemas built inside a function (per call, or from settings) need no wrapping.
 */
export function lazySchema<T extends object>(build: () => T): T {
  let schema: T | undefined;
  const real = (): T => (schema ??= build());
  return new Proxy({} as T, {
    get: (_, key) => Reflect.get(real(), key),
    set: (_, key, value) => Reflect.set(real(), key, value),
    has: (_, key) => Reflect.has(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    // The stand-in's own target has none of the schema's keys, so none may be reported as fixed.
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(real(), key);
      return d && { ...d, configurable: true };
    },
    defineProperty: (_, key, d) => Reflect.defineProperty(real(), key, d),
    deleteProperty: (_, key) => Reflect.deleteProperty(real(), key),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
  });
}
