/**
 * Just enough Bicep reading for static checks. Bicep cannot be compiled offline (no npm package; the
 * Azure CLI downloads the compiler on first use), so test/unit/infra reads the text: comments are
 * blanked out (offsets kept), then blocks are found by string-aware brace matching.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface BicepFile {
  path: string; // relative to the repo root
  raw: string;
  /** `raw` with comments replaced by spaces (same length, same line breaks). */
  code: string;
}

export interface BicepResource {
  file: string;
  symbol: string;
  /** Full type, with the parent's type prepended for nested declarations. */
  type: string;
  apiVersion?: string;
  existing: boolean;
  /** Text of the `{ ... }` body, braces included. */
  body: string;
  start: number;
  end: number;
}

export function listFiles(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full, ext));
    else if (entry.name.endsWith(ext)) out.push(full);
  }
  return out.sort();
}

export function readBicep(full: string, repoRoot: string): BicepFile {
  const raw = readFileSync(full, 'utf8');
  return { path: relative(repoRoot, full).split('\\').join('/'), raw, code: stripComments(raw) };
}

/** Blanks `//` and `/* *\/` comments, leaving strings ('...', '''...''') alone. */
export function stripComments(src: string): string {
  const out = src.split('');
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  while (i < src.length) {
    if (src.startsWith("'''", i)) {
      const end = src.indexOf("'''", i + 3);
      i = end < 0 ? src.length : end + 3;
    } else if (src[i] === "'") {
      i = skipString(src, i);
    } else if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      blank(i, stop);
      i = stop;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      blank(i, stop);
      i = stop;
    } else {
      i++;
    }
  }
  return out.join('');
}

/** Index just past the single-quoted string starting at `i` (`\'` escapes a quote). */
function skipString(src: string, i: number): number {
  let k = i + 1;
  while (k < src.length) {
    if (src[k] === '\\') k += 2;
    else if (src[k] === "'") return k + 1;
    else k++;
  }
  return k;
}

/** The balanced block starting at `open` (which must be `{`, `[` or `(`), brackets included. */
export function blockAt(code: string, open: number): { text: string; end: number } {
  const pairs: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
  const stack: string[] = [];
  let i = open;
  while (i < code.length) {
    const ch = code[i]!;
    if (code.startsWith("'''", i)) {
      const end = code.indexOf("'''", i + 3);
      i = end < 0 ? code.length : end + 3;
      continue;
    }
    if (ch === "'") {
      i = skipString(code, i);
      continue;
    }
    if (pairs[ch]) stack.push(pairs[ch]!);
    else if (ch === '}' || ch === ']' || ch === ')') {
      if (stack.pop() !== ch) throw new Error(`unbalanced '${ch}' at offset ${i}`);
      if (stack.length === 0) return { text: code.slice(open, i + 1), end: i + 1 };
    }
    i++;
  }
  throw new Error(`unclosed block at offset ${open}`);
}

const RESOURCE = /^[ \t]*resource\s+(\w+)\s+'([^'@]+)(?:@([^']+))?'\s+(existing\s+)?=\s*/gm;

export function resources(file: BicepFile): BicepResource[] {
  const found: BicepResource[] = [];
  for (const m of file.code.matchAll(RESOURCE)) {
    const open = file.code.indexOf('{', m.index! + m[0].length);
    const { text, end } = blockAt(file.code, open);
    found.push({
      file: file.path,
      symbol: m[1]!,
      type: m[2]!,
      apiVersion: m[3],
      existing: Boolean(m[4]),
      body: text,
      start: m.index!,
      end,
    });
  }
  // Nested declarations carry a relative type ('blobServices'): prefix the innermost enclosing resource's type.
  for (const r of found) {
    if (r.type.includes('/')) continue;
    const parents = found.filter((p) => p !== r && p.start < r.start && r.end <= p.end);
    const parent = parents.sort((a, b) => b.start - a.start)[0];
    if (parent) r.type = `${parent.type}/${r.type}`;
  }
  return found;
}

/** Keys declared directly inside an object block (not inside nested objects/arrays). */
export function topLevelKeys(block: string): string[] {
  return topLevelEntries(block).map((e) => e.key);
}

/** `key: value` entries directly inside an object block; `value` is the raw text up to the line end (or the whole nested block). */
export function topLevelEntries(block: string): { key: string; value: string }[] {
  const inner = block.slice(1, -1);
  const out: { key: string; value: string }[] = [];
  let depth = 0;
  let i = 0;
  let lineStart = true;
  while (i < inner.length) {
    const ch = inner[i]!;
    if (lineStart && depth === 0) {
      const m = /^[ \t]*(?:([A-Za-z_]\w*)|'([^']*)')[ \t]*:[ \t]*/.exec(inner.slice(i));
      if (m) {
        const key = (m[1] ?? m[2])!;
        const valueStart = i + m[0].length;
        const opener = inner[valueStart];
        let value: string;
        if (opener === '{' || opener === '[') value = blockAt(inner, valueStart).text;
        else {
          const nl = inner.indexOf('\n', valueStart);
          value = inner.slice(valueStart, nl < 0 ? inner.length : nl).trim();
        }
        out.push({ key, value });
      }
    }
    lineStart = false;
    if (inner.startsWith("'''", i)) {
      const end = inner.indexOf("'''", i + 3);
      i = end < 0 ? inner.length : end + 3;
      continue;
    }
    if (ch === "'") {
      i = skipString(inner, i);
      continue;
    }
    if (ch === '{' || ch === '[' || ch === '(') depth++;
    else if (ch === '}' || ch === ']' || ch === ')') depth--;
    else if (ch === '\n') lineStart = true;
    i++;
  }
  return out;
}

/** The value of `key` directly inside `block` (a nested block's text, or the raw one-line value). */
export function valueOf(block: string, key: string): string | undefined {
  return topLevelEntries(block).find((e) => e.key === key)?.value;
}

/** Follows `a.b.c` through nested object blocks. */
export function pathValue(block: string, path: string): string | undefined {
  let current: string | undefined = block;
  for (const key of path.split('.')) {
    if (current === undefined || !current.startsWith('{')) return undefined;
    current = valueOf(current, key);
  }
  return current;
}

export interface BicepParam {
  name: string;
  type: string;
  hasDefault: boolean;
}

export function params(file: BicepFile): BicepParam[] {
  const out: BicepParam[] = [];
  for (const m of file.code.matchAll(/^param\s+(\w+)\s+([\w.]+(?:\[\])?\??)(\s*=)?/gm)) {
    out.push({ name: m[1]!, type: m[2]!, hasDefault: Boolean(m[3]) || m[2]!.endsWith('?') });
  }
  return out;
}

export interface BicepModuleCall {
  symbol: string;
  path: string;
  condition?: string;
  body: string;
}

export function moduleCalls(file: BicepFile): BicepModuleCall[] {
  const out: BicepModuleCall[] = [];
  for (const m of file.code.matchAll(/^module\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*(\([^\n]*?\))\s*)?/gm)) {
    const open = file.code.indexOf('{', m.index! + m[0].length);
    out.push({ symbol: m[1]!, path: m[2]!, condition: m[3], body: blockAt(file.code, open).text });
  }
  return out;
}

/** `var name = <value>`: a block's text, or the one-line value. */
export function variable(file: BicepFile, name: string): string | undefined {
  const m = new RegExp(`^var\\s+${name}\\s*=\\s*`, 'm').exec(file.code);
  if (!m) return undefined;
  const start = m.index + m[0].length;
  const opener = file.code[start];
  if (opener === '{' || opener === '[') return blockAt(file.code, start).text;
  const nl = file.code.indexOf('\n', start);
  return file.code.slice(start, nl < 0 ? undefined : nl).trim();
}

/** Single-quoted string literals in a piece of code (no interpolation handling needed here). */
export function stringLiterals(text: string): string[] {
  return [...text.matchAll(/'((?:[^'\\]|\\.)*)'/g)].map((m) => m[1]!);
}
