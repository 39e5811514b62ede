/**
 * Minimal glob expander for package.json `main` (Node 20 has no fs.glob).
 * Supports `*`, `?`, `**`, `[...]` and `{a,b}` within a path segment.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MAGIC = /[*?[{]/;

function escapeRegex(text: string): string {
  return text.replace(/[.+^$()|\\/]/g, '\\$&');
}

/** Converts one path segment pattern to an anchored regular expression. */
export function segmentToRegex(segment: string): RegExp {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        let cls = segment.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        out += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      const end = segment.indexOf('}', i + 1);
      if (end < 0) out += '\\{';
      else {
        const alternatives = segment.slice(i + 1, end).split(',').map((a) => segmentToRegex(a).source.slice(1, -1));
        out += `(?:${alternatives.join('|')})`;
        i = end;
      }
    } else if (c === '}' || c === ']') out += '\\' + c;
    else out += escapeRegex(c);
  }
  return new RegExp(`^${out}$`);
}

function listDir(dir: string): { name: string; isDir: boolean }[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).map((d) => ({
      name: d.name,
      isDir: d.isDirectory() || (d.isSymbolicLink() && isDirectory(join(dir, d.name))),
    }));
  } catch {
    return [];
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Expands `pattern` (forward slashes, relative to `cwd`) to absolute file paths, sorted. */
export function expandGlob(pattern: string, cwd: string): string[] {
  const segments = pattern.replace(/\\/g, '/').replace(/^\.\//, '').split('/').filter((s) => s !== '' && s !== '.');
  const results = new Set<string>();

  const walk = (dir: string, index: number): void => {
    if (index === segments.length) {
      if (isFile(dir)) results.add(dir);
      return;
    }
    const segment = segments[index] as string;
    if (segment === '**') {
      walk(dir, index + 1);
      for (const entry of listDir(dir)) {
        // Walking into dependencies or dot folders is never what an entry-point glob means.
        if (entry.isDir && entry.name !== 'node_modules' && !entry.name.startsWith('.')) {
          walk(join(dir, entry.name), index);
        }
      }
      return;
    }
    if (!MAGIC.test(segment)) {
      walk(join(dir, segment), index + 1);
      return;
    }
    const regex = segmentToRegex(segment);
    for (const entry of listDir(dir)) {
      if (entry.name.startsWith('.') && !segment.startsWith('.')) continue;
      if (regex.test(entry.name)) walk(join(dir, entry.name), index + 1);
    }
  };

  walk(cwd, 0);
  return [...results].sort();
}
