/**
 * JSON.stringify without recursion, for values parsed from requests (pure). The host
 * re-serialises each Event Grid event for the worker; JSON.stringify overflows the stack
 * on deeply nested input, and the webhook must hand such events to the app (which
 * dead-letters them) rather than fail the delivery with a 500.
 */

type Frame =
  | { kind: 'array'; items: unknown[]; index: number; parts: string[] }
  | { kind: 'object'; keys: string[]; source: Record<string, unknown>; index: number; parts: string[] };

/** A primitive's JSON text, or undefined for values JSON leaves out (undefined, functions, symbols). */
function primitiveText(value: unknown): string | undefined {
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  return JSON.stringify(value) as string | undefined;
}

function isComposite(value: unknown): value is object {
  return typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** Same text as JSON.stringify(value) for JSON data; cycles become null instead of throwing. */
export function stringifyJson(value: unknown): string {
  if (!isComposite(value)) return primitiveText(value) ?? 'null';
  const open = new Set<object>();
  const frameOf = (v: object): Frame => {
    open.add(v);
    return Array.isArray(v)
      ? { kind: 'array', items: v, index: 0, parts: [] }
      : { kind: 'object', keys: Object.keys(v), source: v as Record<string, unknown>, index: 0, parts: [] };
  };
  const stack: Array<{ frame: Frame; owner: object; key?: string }> = [{ frame: frameOf(value), owner: value }];
  let finished = '';
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { frame: Frame; owner: object; key?: string };
    const { frame } = top;
    const length = frame.kind === 'array' ? frame.items.length : frame.keys.length;
    if (frame.index >= length) {
      stack.pop();
      open.delete(top.owner);
      const text = frame.kind === 'array' ? `[${frame.parts.join(',')}]` : `{${frame.parts.join(',')}}`;
      const parent = stack[stack.length - 1];
      if (!parent) finished = text;
      else parent.frame.parts.push(top.key === undefined ? text : `${JSON.stringify(top.key)}:${text}`);
      continue;
    }
    const key = frame.kind === 'object' ? (frame.keys[frame.index] as string) : undefined;
    const child = frame.kind === 'array' ? frame.items[frame.index] : frame.source[key as string];
    frame.index++;
    if (isComposite(child) && !open.has(child)) {
      stack.push({ frame: frameOf(child), owner: child, ...(key !== undefined ? { key } : {}) });
      continue;
    }
    const text = isComposite(child) ? 'null' : primitiveText(child);
    if (frame.kind === 'array') frame.parts.push(text ?? 'null');
    else if (text !== undefined) frame.parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return finished;
}
