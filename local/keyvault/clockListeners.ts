/**
 * Who hears the clock move: URLs (the local functions hosts) that get
 * `POST {time}` after every move, once the vaults' events have settled. A listener
 * that keeps failing (a host that is gone) is dropped.
 */
import { requestJson } from '../httpJson';

const LISTENER_TIMEOUT_MS = 60_000;
const MAX_LISTENER_FAILURES = 3;

export interface ClockListeners {
  /** Registers `url` (again: its failure count starts over); the registered URLs. */
  add(url: string): string[];
  remove(url: string): string[];
  list(): string[];
  /** Tells every listener the time; resolves when all have answered or failed. */
  notify(time: Date): Promise<void>;
}

export function clockListeners(options: {
  ca: string;
  log: (line: string) => void;
  /** A listener (a functions host) failed MAX_LISTENER_FAILURES moves in a row and was dropped. */
  onDropped?: (url: string, reason: string) => void;
}): ClockListeners {
  /** Listener URL → consecutive failures. */
  const listeners = new Map<string, number>();
  const notifyOne = async (url: string, body: { time: string }): Promise<void> => {
    let problem: string | undefined;
    try {
      const { status } = await requestJson(url, { method: 'POST', body, ca: options.ca, timeoutMs: LISTENER_TIMEOUT_MS });
      if (status < 200 || status >= 300) problem = `answered ${status}`;
    } catch (e) {
      problem = `failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (!problem) {
      listeners.set(url, 0);
      return;
    }
    const failures = (listeners.get(url) ?? 0) + 1;
    if (failures >= MAX_LISTENER_FAILURES) {
      listeners.delete(url);
      options.log(`keyvault: clock listener ${url} ${problem}; dropped after ${failures} failures in a row`);
      options.onDropped?.(url, `${problem}; ${failures} failed moves in a row`);
    } else {
      listeners.set(url, failures);
      options.log(`keyvault: clock listener ${url} ${problem}`);
    }
  };
  return {
    add(url) {
      listeners.set(url, 0);
      return [...listeners.keys()];
    },
    remove(url) {
      listeners.delete(url);
      return [...listeners.keys()];
    },
    list: () => [...listeners.keys()],
    async notify(time) {
      const body = { time: time.toISOString() };
      await Promise.all([...listeners.keys()].map((url) => notifyOne(url, body)));
    },
  };
}
