/**
 * Stand-alone local Event Grid: `node dist/local/eventgrid/main.js`.
 * Env: EVENTGRID_PORT (8444), EVENTGRID_TOPIC_KEY, EVENTGRID_TLS_DIR (.keyturn/keyvault, the stack's one CA),
 * EVENTGRID_SUBSCRIPTIONS (JSON array of subscriptions).
 */
import { ensureLocalTls } from '../tls';
import { startEventGrid, subscriptionsFromEnv } from './index';

async function main(): Promise<void> {
  const portText = process.env['EVENTGRID_PORT'];
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new Error(`EVENTGRID_PORT must be a port number, got '${portText}'`);
  }
  const tls = await ensureLocalTls(process.env['EVENTGRID_TLS_DIR'] ?? '.keyturn/keyvault');
  const options: Parameters<typeof startEventGrid>[0] = { tls, subscriptions: subscriptionsFromEnv(process.env) };
  if (port !== undefined) options.port = port;
  const key = process.env['EVENTGRID_TOPIC_KEY'];
  if (key) options.topicKey = key;
  const grid = await startEventGrid(options);
  console.log(`[eventgrid] CA file for clients: ${tls.caFile}`);
  const stop = (): void => void grid.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`[eventgrid] failed to start: ${(err as Error).message}`);
  process.exit(1);
});
