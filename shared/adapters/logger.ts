import type { InvocationContext } from '@azure/functions';
import type { Logger } from '../ports';

const format = (message: string, props?: Record<string, unknown>) =>
  props && Object.keys(props).length > 0 ? `${message} ${JSON.stringify(props)}` : message;

/** Routes service logs to the invocation's log (func/App Insights). */
export function contextLogger(context: InvocationContext): Logger {
  return {
    info: (m, p) => context.info(format(m, p)),
    warn: (m, p) => context.warn(format(m, p)),
    error: (m, p) => context.error(format(m, p)),
  };
}

export const consoleLogger: Logger = {
  info: (m, p) => console.log(format(m, p)),
  warn: (m, p) => console.warn(format(m, p)),
  error: (m, p) => console.error(format(m, p)),
};
