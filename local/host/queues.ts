/**
 * Queue triggers (`app.storageQueue`) against Azurite, as func's Storage Queues
 * extension runs them: poll with exponential backoff while idle (up to
 * `maxPollingInterval`), dequeue a batch under a long invisibility that is renewed
 * while the handler runs, delete on success, and on failure make the message
 * visible again after `visibilityTimeout`, or move it to `{queue}-poison` once it
 * has been dequeued `maxDequeueCount` times. Message text is base64 (the
 * extension's default encoding). Settings come from host.json `extensions.queues`
 * (overridable as `AzureFunctionsJobHost__extensions__queues__{name}`).
 */
import { QueueServiceClient, type DequeuedMessageItem, type QueueClient } from '@azure/storage-queue';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RpcTypedData } from './coreTypes';
import type { HostFunction } from './functionCatalog';
import type { HostLogger } from './hostLogger';

export interface QueueOptions {
  batchSize: number;
  newBatchThreshold: number;
  maxDequeueCount: number;
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  /** How long a dequeued message stays invisible; renewed at half of it while the handler runs. */
  leaseMs: number;
}

const MIN_POLL_MS = 100;

/** .NET TimeSpan text (`hh:mm:ss`, `d.hh:mm:ss`, fractions allowed) → ms. */
export function parseTimeSpan(raw: unknown, field: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw;
  const m = typeof raw === 'string' ? /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(raw.trim()) : null;
  if (!m) throw new Error(`host.json extensions.queues.${field} must be a TimeSpan like "00:00:30", got ${JSON.stringify(raw)}`);
  return Math.round(((Number(m[1] ?? 0) * 24 + Number(m[2])) * 3600 + Number(m[3]) * 60 + Number(m[4])) * 1000);
}

function positiveInt(raw: unknown, field: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`host.json extensions.queues.${field} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** host.json `extensions.queues` with func's defaults; app settings override (as func reads them). */
export function readQueueOptions(appDir: string, env: NodeJS.ProcessEnv): QueueOptions {
  const path = join(appDir, 'host.json');
  let queues: Record<string, unknown> = {};
  if (existsSync(path)) {
    const root = JSON.parse(readFileSync(path, 'utf8').replace(/^\uFEFF/, '')) as { extensions?: { queues?: unknown } };
    const q = root?.extensions?.queues;
    if (q && typeof q === 'object' && !Array.isArray(q)) queues = q as Record<string, unknown>;
  }
  const setting = (name: string): unknown => env[`AzureFunctionsJobHost__extensions__queues__${name}`] ?? (Object.prototype.hasOwnProperty.call(queues, name) ? queues[name] : undefined);
  const batchSize = positiveInt(setting('batchSize'), 'batchSize', 16);
  const lease = env.LOCALHOST_QUEUE_LEASE_SECONDS;
  const leaseSeconds = lease === undefined || lease === '' ? 600 : Number(lease);
  if (!(leaseSeconds >= 1)) throw new Error(`LOCALHOST_QUEUE_LEASE_SECONDS must be at least 1, got '${lease}'`);
  return {
    batchSize,
    newBatchThreshold: positiveInt(setting('newBatchThreshold'), 'newBatchThreshold', Math.floor(batchSize / 2)),
    maxDequeueCount: positiveInt(setting('maxDequeueCount'), 'maxDequeueCount', 5),
    maxPollingIntervalMs: setting('maxPollingInterval') === undefined ? 60_000 : Math.max(MIN_POLL_MS, parseTimeSpan(setting('maxPollingInterval'), 'maxPollingInterval')),
    visibilityTimeoutMs: setting('visibilityTimeout') === undefined ? 0 : parseTimeSpan(setting('visibilityTimeout'), 'visibilityTimeout'),
    leaseMs: leaseSeconds * 1000,
  };
}

export interface QueueTrigger {
  queueName: string;
  /** The app setting naming the storage account (default AzureWebJobsStorage). */
  connection: string;
}

/** The service client for a connection setting: a connection string locally; `{name}__queueServiceUri` needs an identity (Azure only). */
export function queueServiceFor(connection: string, env: NodeJS.ProcessEnv): QueueServiceClient {
  const value = env[connection]?.trim();
  if (value) return QueueServiceClient.fromConnectionString(value);
  if (env[`${connection}__queueServiceUri`]) {
    throw new Error(`Queue connection '${connection}' is set as ${connection}__queueServiceUri (managed identity); the local host needs a connection string in '${connection}'.`);
  }
  throw new Error(`Queue connection setting '${connection}' is not set.`);
}

export interface QueueInvoke {
  (fn: HostFunction, data: RpcTypedData, reason: string, metadata: Record<string, RpcTypedData>): Promise<{ ok: boolean }>;
}

function triggerData(text: string): RpcTypedData {
  // JSON objects and arrays reach the handler parsed, as with func; anything else as a string.
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') return { json: text };
  } catch {
    // not JSON
  }
  return { string: text };
}

const json = (v: unknown): RpcTypedData => ({ json: JSON.stringify(v) });

/** One queue-triggered function's listener. */
class QueueListener {
  private stopped = false;
  private wake?: () => void;
  private readonly inFlight = new Set<Promise<void>>();
  private loop?: Promise<void>;
  private poison?: QueueClient;

  constructor(
    private readonly fn: HostFunction,
    private readonly queue: QueueClient,
    private readonly service: QueueServiceClient,
    private readonly options: QueueOptions,
    private readonly invoke: QueueInvoke,
    private readonly logger: HostLogger,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let delay = MIN_POLL_MS;
    while (!this.stopped) {
      let got = 0;
      try {
        const room = this.options.batchSize - this.inFlight.size;
        if (room > 0 && this.inFlight.size <= this.options.newBatchThreshold) {
          const res = await this.queue.receiveMessages({ numberOfMessages: Math.min(32, room), visibilityTimeout: Math.ceil(this.options.leaseMs / 1000) });
          got = res.receivedMessageItems.length;
          for (const m of res.receivedMessageItems) {
            const p = this.process(m).catch((e: unknown) => this.logger.error(`Queue message ${m.messageId} on '${this.queue.name}': ${(e as Error).message}`));
            this.inFlight.add(p);
            void p.finally(() => {
              this.inFlight.delete(p);
              this.wake?.();
            });
          }
        } else {
          // Busy: wait for a message to finish (or a short while), without backing off.
          await this.sleep(MIN_POLL_MS);
          continue;
        }
      } catch (e) {
        // A queue that does not exist yet is just empty; anything else is logged and backed off.
        if ((e as { statusCode?: number }).statusCode !== 404) this.logger.warn(`Polling queue '${this.queue.name}' failed: ${(e as Error).message}`);
      }
      if (this.stopped) break;
      delay = got > 0 ? MIN_POLL_MS : Math.min(this.options.maxPollingIntervalMs, delay * 2);
      if (got === 0) await this.sleep(delay);
    }
  }

  private async toPoison(m: DequeuedMessageItem, popReceipt: string): Promise<void> {
    this.poison ??= this.service.getQueueClient(`${this.queue.name}-poison`);
    await this.poison.createIfNotExists();
    await this.poison.sendMessage(m.messageText);
    await this.queue.deleteMessage(m.messageId, popReceipt);
    this.logger.warn(`Message has reached MaxDequeueCount of ${this.options.maxDequeueCount}. Moving message to queue '${this.queue.name}-poison'.`);
  }

  private async process(m: DequeuedMessageItem): Promise<void> {
    let popReceipt = m.popReceipt;
    if (m.dequeueCount > this.options.maxDequeueCount) return this.toPoison(m, popReceipt);
    // Keep it invisible while the handler runs (a host killed mid-message lets it reappear after the lease).
    let renewing: Promise<unknown> = Promise.resolve();
    const renew = setInterval(() => {
      renewing = this.queue
        .updateMessage(m.messageId, popReceipt, m.messageText, Math.ceil(this.options.leaseMs / 1000))
        .then((r) => {
          popReceipt = r.popReceipt as string;
        })
        .catch((e: unknown) => this.logger.warn(`Renewing the invisibility of message ${m.messageId} failed: ${(e as Error).message}`));
    }, this.options.leaseMs / 2);
    let ok = false;
    try {
      const text = Buffer.from(m.messageText, 'base64').toString('utf8');
      if (Buffer.from(text, 'utf8').toString('base64') !== m.messageText.replace(/\s/g, '')) {
        this.logger.error(`Message ${m.messageId} on '${this.queue.name}' is not base64 text (the extension's messageEncoding); it counts as a failed attempt.`);
      } else {
        const metadata: Record<string, RpcTypedData> = {
          DequeueCount: json(m.dequeueCount),
          Id: json(m.messageId),
          PopReceipt: json(popReceipt),
          InsertionTime: json(m.insertedOn.toISOString()),
          ExpirationTime: json(m.expiresOn.toISOString()),
          NextVisibleTime: json(m.nextVisibleOn.toISOString()),
          QueueTrigger: json(text),
        };
        ok = (await this.invoke(this.fn, triggerData(text), `New queue message detected on '${this.queue.name}'.`, metadata)).ok;
      }
    } finally {
      clearInterval(renew);
      await renewing;
    }
    if (ok) {
      await this.queue.deleteMessage(m.messageId, popReceipt);
    } else if (m.dequeueCount >= this.options.maxDequeueCount) {
      await this.toPoison(m, popReceipt);
    } else {
      await this.queue.updateMessage(m.messageId, popReceipt, m.messageText, Math.ceil(this.options.visibilityTimeoutMs / 1000));
    }
  }
}

export interface QueueTriggers {
  stop(): Promise<void>;
}

/** Starts a listener per enabled, healthy queue-triggered function. */
export function startQueueTriggers(functions: HostFunction[], env: NodeJS.ProcessEnv, options: QueueOptions, invoke: QueueInvoke, logger: HostLogger): QueueTriggers {
  const listeners: QueueListener[] = [];
  for (const fn of functions) {
    if (!fn.queue || fn.disabled || fn.error) continue;
    let service: QueueServiceClient;
    try {
      service = queueServiceFor(fn.queue.connection, env);
    } catch (err) {
      // Still listed and runnable through the admin API; it just has no queue to listen to.
      logger.warn(`The '${fn.name}' function does not listen to queue '${fn.queue.queueName}': ${(err as Error).message}`);
      continue;
    }
    const listener = new QueueListener(fn, service.getQueueClient(fn.queue.queueName), service, options, invoke, logger);
    listener.start();
    listeners.push(listener);
  }
  return {
    stop: async () => {
      await Promise.all(listeners.map((l) => l.stop()));
    },
  };
}
