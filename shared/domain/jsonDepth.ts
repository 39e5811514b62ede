/**
 * How deeply JSON may nest, checked without recursion (pure, no I/O). Recursive code
 * (zod, JSON.stringify, structuredClone) overflows the stack a few thousand levels down,
 * so input is measured here first: by scanning the JSON text, or by walking a value with
 * an explicit stack (cycle-safe, so in-process values are covered too).
 */

/** The deepest nesting any input may have (`{}` and `[]` are depth 1). */
export const MAX_JSON_DEPTH = 64;

/**
 * True when the JSON text nests objects/arrays deeper than `maxDepth`. Brackets inside
 * strings do not count; the text need not be valid JSON (the parser reports that).
 */
export function jsonTextExceedsDepth(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * True when a value nests objects/arrays deeper than `maxDepth` (a cycle is infinitely
 * deep). Shared sub-objects are re-walked only when reached at a greater depth.
 */
export function valueExceedsDepth(value: unknown, maxDepth: number = MAX_JSON_DEPTH): boolean {
  const deepestSeen = new Map<object, number>();
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof current !== 'object' || current === null) continue;
    if (depth > maxDepth) return true;
    if ((deepestSeen.get(current) ?? 0) >= depth) continue;
    deepestSeen.set(current, depth);
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

/**
 * The path (`a.b[2]`) of the first own `__proto__` key in a parsed JSON value, or null.
 * JSON.parse keeps such keys as plain data, but any later copy into an ordinary object
 * (`obj[key] = v`, a zod record) turns them into a prototype swap, so callers refuse them.
 * Call only on values within MAX_JSON_DEPTH.
 */
export function prototypeKeyPath(value: unknown): string | null {
  const stack: Array<{ value: unknown; path: string }> = [{ value, path: '' }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop() as { value: unknown; path: string };
    if (typeof current !== 'object' || current === null) continue;
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], path: `${path}[${i}]` });
      continue;
    }
    const keys = Object.keys(current);
    const at = (key: string): string => (path === '' ? key : `${path}.${key}`);
    if (keys.includes('__proto__')) return at('__proto__');
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      stack.push({ value: (current as Record<string, unknown>)[key], path: at(key) });
    }
  }
  return null;
}
