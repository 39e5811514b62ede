/** The sample settings and a reader of the settings `loadConfig` refuses, for the config tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../shared/config';

export const sample = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'local.settings.sample.json'), 'utf8')) as {
  Values: Record<string, string>;
}).Values;

/** The settings named in loadConfig's one ConfigError (fails the test if it accepts `env`). */
export function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems.map((p) => p.setting);
  }
  throw new Error('expected loadConfig to throw');
}
