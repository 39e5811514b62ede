/**
 * Console output in the style of `func start`, plus the worker's `log` hooks
 * (which may rewrite user logs, never system logs).
 */
import type { HookCallback, RpcLogCategory, RpcLogLevel } from './coreTypes';

const LEVELS = new Map<string, number>([
  ['trace', 0],
  ['debug', 1],
  ['information', 2],
  ['warning', 3],
  ['error', 4],
  ['critical', 5],
  ['none', 6],
]);

/** A log line as text whatever a hook left in `message` (a cyclic object, a throwing toString…). */
function messageText(message: unknown): string {
  if (typeof message === 'string') return message;
  try {
    return String(message);
  } catch {
    return '[unprintable log message]';
  }
}

export interface InvocationLogContext {
  hookData: Record<string, unknown>;
  invocationContext: unknown;
}

export class HostLogger {
  readonly #write: (line: string) => void;
  readonly #minLevel: number;
  logHooks: HookCallback[] = [];
  appHookData: Record<string, unknown> = {};

  constructor(write: (line: string) => void, minLevel: string) {
    this.#write = write;
    this.#minLevel = LEVELS.get(minLevel.toLowerCase()) ?? 2;
  }

  /** A host line, printed as is (startup banner, listings). */
  plain(line: string): void {
    this.#write(line);
  }

  /** A host event, timestamped like func's console output. */
  info(message: string): void {
    this.#write(`[${new Date().toISOString()}] ${message}`);
  }

  warn(message: string): void {
    this.#write(`[${new Date().toISOString()}] Warning: ${message}`);
  }

  error(message: string): void {
    this.#write(`[${new Date().toISOString()}] Error: ${message}`);
  }

  /** Logs coming through the core API (library system logs and user `context.log`). */
  coreLog(level: RpcLogLevel, category: RpcLogCategory, message: string, invocation?: InvocationLogContext): void {
    let finalLevel = level;
    let finalMessage = message;
    if (this.logHooks.length > 0) {
      const ctx = {
        level,
        message,
        get category() {
          return category;
        },
        get hookData() {
          return invocation?.hookData ?? {};
        },
        appHookData: this.appHookData,
        get invocationContext() {
          return invocation?.invocationContext;
        },
      };
      try {
        for (const hook of this.logHooks) {
          // An async hook's rejection must not become an unhandled rejection (which ends the process).
          const returned: unknown = hook(ctx);
          if (returned instanceof Promise) returned.catch(() => undefined);
        }
        if (category === 'user') {
          finalLevel = ctx.level;
          finalMessage = ctx.message;
        }
      } catch {
        // A failing hook must not suppress the log.
      }
    }
    if ((LEVELS.get(String(finalLevel)) ?? 2) < this.#minLevel) return;
    const prefix = finalLevel === 'warning' ? 'Warning: ' : finalLevel === 'error' || finalLevel === 'critical' ? 'Error: ' : '';
    try {
      this.#write(`[${new Date().toISOString()}] ${prefix}${messageText(finalMessage)}`);
    } catch {
      // Logging never fails an invocation or a request.
    }
  }
}
