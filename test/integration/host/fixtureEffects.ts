/** Reads the JSON lines the fixture app appends to FIXTURE_EFFECTS_FILE. */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Effect {
  kind: string;
  name?: string;
  functionName?: string;
  [key: string]: unknown;
}

export class EffectsFile {
  readonly path = join(tmpdir(), `keyturn-host-effects-${randomUUID()}.jsonl`);

  read(): Effect[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Effect);
  }

  of(kind: string, name?: string): Effect[] {
    return this.read().filter((e) => e.kind === kind && (name === undefined || e.name === name || e.functionName === name));
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }
}
