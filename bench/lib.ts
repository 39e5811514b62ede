/** Measuring and printing for the benchmarks: a bounded load loop, percentiles, tables. */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export const CONCURRENCY = 8;

/**
 * KEYTURN_BENCH_SCALE=tiny: every benchmark at a few operations, so a smoke test can run
 * them all quickly (test/integration/bench.test.ts). Figures at that size mean nothing.
 */
export const TINY = process.env.KEYTURN_BENCH_SCALE === 'tiny';

/** `full` normally, `tiny` under KEYTURN_BENCH_SCALE=tiny. */
export const scaled = (full: number, tiny: number): number => (TINY ? tiny : full);

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * Plain HTTP to the app. Keep-alive by default, as a real client or CDN reuses its
 * connections; `keepAlive: false` opens a new connection per request.
 */
export function httpClient(options: { maxSockets?: number; keepAlive?: boolean } = {}) {
  const agent = new Agent({ keepAlive: options.keepAlive ?? true, maxSockets: options.maxSockets ?? CONCURRENCY });
  const call = (method: string, url: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolveCall, reject) => {
      const req = request(url, { method, headers, agent });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolveCall({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.end(body);
    });
  };
  return { call, close: () => agent.destroy() };
}

export function expectStatus(reply: Reply, status: number, what: string): Reply {
  // Not a performance assertion: a figure over failing requests would measure the wrong thing.
  if (reply.status !== status) throw new Error(`${what} answered ${reply.status}, expected ${status}: ${reply.text.slice(0, 300)}`);
  return reply;
}

export interface LoadResult {
  label: string;
  ops: number;
  elapsedMs: number;
  /** Sorted ascending. */
  latenciesMs: number[];
  /** Extra columns, in the order of loadTable's extraHeaders. */
  extra?: string[];
}

/**
 * Runs `op` up to `ops` times with `concurrency` workers, stopping early at `maxMs`
 * so that a slow machine shortens the run instead of lengthening it.
 */
export async function load(label: string, options: { ops: number; maxMs: number; concurrency?: number }, op: (i: number) => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const deadline = started + options.maxMs;
  const worker = async () => {
    while (next < options.ops && performance.now() < deadline) {
      const i = next++;
      const t = performance.now();
      await op(i);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? CONCURRENCY }, worker));
  const elapsedMs = performance.now() - started;
  return { label, ops: latencies.length, elapsedMs, latenciesMs: latencies.sort((a, b) => a - b) };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const rate = (r: LoadResult): number => (r.ops * 1000) / r.elapsedMs;

export function fmt(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return '-';
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toFixed(d);
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  // First column left-aligned (labels), the figures right-aligned.
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].map((l) => `  ${l.trimEnd()}`).join('\n');
}

/** The usual table: ops, ops/s, p50, p95, then any extra columns. */
export function loadTable(results: LoadResult[], extraHeaders: string[] = []): string {
  const header = ['', 'ops', 'ops/s', 'p50 ms', 'p95 ms', ...extraHeaders];
  const rows = results.map((r) => [
    r.label,
    String(r.ops),
    fmt(rate(r)),
    fmt(percentile(r.latenciesMs, 50)),
    fmt(percentile(r.latenciesMs, 95)),
    ...extraHeaders.map((_, i) => r.extra?.[i] ?? ''),
  ]);
  return table(header, rows);
}

export const ratio = (a: number, b: number): string => `${fmt(a / b)}x`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for `work` (if any) at most `ms`. Its timer is cleared once the wait ends: a bare
 * `Promise.race([work, sleep(ms)])` leaves the timer pending, which kept a process (the
 * jest worker running the soak test) alive for the whole `ms` after the work was done.
 */
export async function waitAtMost(work: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
