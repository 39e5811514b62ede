/**
 * Console output in the style of `func start`, plus the worker's `log` hooks
 * (which may rewrite user logs, never system logs).
 */
import type { HookCallback, RpcLogCategory, RpcLogLevel } from './coreTypes';

const LEVELS: Record<string, number> = { trace: 0, debug: 1, information: 2, warning: 3, error: 4, critical: 5, none: 6 };

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
    this.#minLevel = LEVELS[minLevel.toLowerCase()] ?? LEVELS.information!;
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
        for (const hook of this.logHooks) void hook(ctx);
        if (category === 'user') {
          finalLevel = ctx.level;
          finalMessage = ctx.message;
        }
      } catch {
        // A failing hook must not suppress the log.
      }
    }
    if ((LEVELS[finalLevel] ?? 2) < this.#minLevel) return;
    const prefix = finalLevel === 'warning' ? 'Warning: ' : finalLevel === 'error' || finalLevel === 'critical' ? 'Error: ' : '';
    this.#write(`[${new Date().toISOString()}] ${prefix}${finalMessage}`);
  }
}
