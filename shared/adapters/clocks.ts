import { get as getHttp } from 'node:http';
import { type AgentSource, https } from './tlsAgent';
import type { Clock } from '../ports';

export const systemClock: Clock = { now: async () => new Date() };

/**
 * Follows the Key Vault emulator's movable clock (local mode only). It asks on every
 * read: a clock jump must be seen by the very next timer or event it triggers.
 */
export function emulatorClock(timeUrl: string, agent: AgentSource): Clock {
  return {
    now: () =>
      new Promise<Date>((resolve, reject) => {
        const url = new URL(timeUrl);
        const request = url.protocol === 'https:' ? https().get(url, { agent: agent() }) : getHttp(url);
        request.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            try {
              const time = new Date((JSON.parse(body) as { time: string }).time);
              if (res.statusCode !== 200 || Number.isNaN(time.getTime())) throw new Error(`status ${res.statusCode}`);
              resolve(time);
            } catch (e) {
              reject(new Error(`The emulator clock at ${timeUrl} gave no time: ${(e as Error).message}`));
            }
          });
        });
        request.on('error', reject);
        request.setTimeout(10_000, () => request.destroy(new Error(`The emulator clock at ${timeUrl} timed out`)));
      }),
  };
}
