/**
 * HTTPS transport: the auth challenge, fault injection, routing and the
 * management API (clock). Handlers are synchronous over the in-memory state,
 * except key generation, so each request sees and leaves a consistent vault.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { type VaultContext, type VaultRequest, type VaultResponse, recoveryLevelOf } from './common';
import { badParameter, forbiddenByRbac, KvError, notImplemented } from './errors';
import { requiredPermission } from './permissions';
import { callerObjectId } from './principals';
import type { Authorization } from './rbac';
import { route } from './routes';
import { readBody as readRequestBody, sendJson } from '../httpBody';

const MAX_BODY = 1024 * 1024;
const MAX_MOVE_SECONDS = 100 * 365 * 86_400;
/** The last date a JavaScript Date holds, less a margin for what is scheduled after a move. */
const MAX_DATE_MS = 8.64e15 - MAX_MOVE_SECONDS * 1000;
const CHALLENGE = 'Bearer resource="https://vault.azure.net"';
const SERVICE_VERSION = '1.9.2665.1';

export interface Management {
  time(): { time: string; offsetSeconds: number };
  advance(seconds: number): Promise<{ time: string; offsetSeconds: number }>;
  addListener(url: string): string[];
  removeListener(url: string): string[];
  listeners(): string[];
}

/** Who may call this vault: without an Authorization any bearer token may do everything. */
export interface VaultAccess {
  vaultName: string;
  /** The vault's ARM resource id. */
  scope: string;
  authorization?: Authorization;
}

export interface ServerDeps {
  ctx: VaultContext;
  access: VaultAccess;
  /** Called after every successful state-changing request (runs due items, persists). */
  afterChange(): void;
  management: Management;
  faults?: FaultInjector;
  log(line: string): void;
}

/** Seeded fraction of vault requests answered 429/503 (alternating), before any state change. */
export class FaultInjector {
  private state: number;
  private count = 0;

  constructor(
    readonly rate: number,
    seed = 1,
  ) {
    if (!(rate >= 0 && rate <= 1)) throw new Error(`Fault rate must be within 0..1, got ${rate}`);
    this.state = seed >>> 0 || 1;
  }

  /** mulberry32: tiny, seeded, good enough to pick requests. */
  private random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  next(): 429 | 503 | undefined {
    if (this.rate <= 0 || this.random() >= this.rate) return undefined;
    return this.count++ % 2 === 0 ? 429 : 503;
  }

  /** How many faults were served so far (tests prove injection really happened). */
  get served(): number {
    return this.count;
  }
}

/** Every answer carries Key Vault's request id and service version, as the real service's do. */
function send(res: ServerResponse, status: number, payload?: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, payload, { 'x-ms-request-id': randomUUID(), 'x-ms-keyvault-service-version': SERVICE_VERSION, ...headers });
}

const readBody = (req: IncomingMessage) => readRequestBody(req, MAX_BODY, () => new KvError(413, 'RequestTooLarge', 'The request body is too large.'));

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw badParameter('The request body is not valid JSON.');
  }
}

function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'https://localhost');
  } catch {
    return undefined;
  }
}

/** Path segments after the first, decoded; empty ones kept (`/keys/n/` and `/keys/n//sign`). */
function segments(pathname: string): string[] {
  try {
    return pathname.split('/').slice(1).map((s) => decodeURIComponent(s));
  } catch {
    throw badParameter('The request URI is not valid.');
  }
}


async function management(deps: ServerDeps, method: string, segs: string[], query: URLSearchParams, body: unknown): Promise<VaultResponse> {
  const path = segs.slice(1).join('/');
  const m = deps.management;
  if (path === 'vault/time' && method === 'GET') return { status: 200, body: m.time() };
  if (path === 'vault/time/all' && (method === 'PUT' || method === 'POST')) {
    const raw = query.get('seconds');
    const seconds = raw === null || raw === '' ? NaN : Number(raw);
    if (!Number.isFinite(seconds) || seconds < 0) throw badParameter(`seconds must be a non-negative number, got '${raw ?? ''}'.`);
    // Past the last date JavaScript can represent the clock (and every vault's dates) would break.
    if (seconds > MAX_MOVE_SECONDS || Date.parse(m.time().time) + seconds * 1000 > MAX_DATE_MS) throw badParameter(`seconds must be at most ${MAX_MOVE_SECONDS} (100 years) per move, got '${raw ?? ''}'.`);
    return { status: 200, body: await m.advance(seconds) };
  }
  if (path === 'vault/time/listeners') {
    if (method === 'GET') return { status: 200, body: { listeners: m.listeners() } };
    const url = (body as { url?: unknown } | undefined)?.url ?? query.get('url');
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw badParameter('A listener needs an http(s) url.');
    if (method === 'POST' || method === 'PUT') return { status: 200, body: { listeners: m.addListener(url) } };
    if (method === 'DELETE') return { status: 200, body: { listeners: m.removeListener(url) } };
  }
  if (path === 'health' && method === 'GET') return { status: 200, body: { status: 'ok' } };
  if (path === 'faults' && method === 'GET') return { status: 200, body: { rate: deps.faults?.rate ?? 0, served: deps.faults?.served ?? 0 } };
  throw notImplemented(`${method} /management/${path}`);
}

export function createVaultServer(tls: { key: string; cert: string }, deps: ServerDeps): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    // A request target URL cannot parse (`//[bad`) is the client's error, answered as such.
    const url = requestUrl(req.url);
    if (!url) {
      req.resume();
      send(res, 400, { error: { code: 'BadParameter', message: 'The request URI is not valid.' } });
      deps.log(`keyvault: ${method} (invalid request URI) 400`);
      return;
    }
    const started = Date.now();
    let status = 500;
    try {
      const segs = segments(url.pathname);
      if ((segs[0] ?? '').toLowerCase() === 'management') {
        const body = parseJson(await readBody(req));
        const out = await management(deps, method, segs, url.searchParams, body);
        status = out.status;
        send(res, out.status, out.body);
        return;
      }
      // The challenge comes before anything else: the SDK's first request carries no body.
      const auth = req.headers.authorization ?? '';
      if (!/^(Bearer|PoP)\s+\S+/i.test(auth)) {
        req.resume();
        status = 401;
        send(res, 401, { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } }, { 'www-authenticate': CHALLENGE });
        return;
      }
      const { authorization } = deps.access;
      const caller = authorization ? callerObjectId(auth) : undefined;
      if (authorization && !caller) {
        req.resume();
        status = 401;
        // Locally a token is an unsigned JWT whose oid names a principal (see principals.ts).
        send(res, 401, { error: { code: 'Unauthorized', message: 'AKV10022: Invalid token: expected a JWT with an oid claim.' } }, { 'www-authenticate': CHALLENGE });
        return;
      }
      const raw = await readBody(req);
      const fault = deps.faults?.next();
      if (fault) {
        status = fault;
        const code = fault === 429 ? 'Throttled' : 'ServiceUnavailable';
        send(res, fault, { error: { code, message: `Injected fault (${code}).` } }, { 'retry-after': '1' });
        return;
      }
      if (authorization && caller) {
        // Before the handler: a denied call changes nothing and emits nothing.
        const need = requiredPermission(method, segs);
        if (need) {
          const resource = need.object ? `${deps.access.scope}/${need.object.collection}/${need.object.name}` : deps.access.scope;
          if (!authorization.permitsData(caller, resource, need.dataAction).allowed) throw forbiddenByRbac(need.dataAction, resource, caller, deps.access.vaultName);
        }
      }
      const vreq: VaultRequest = {
        method,
        baseUrl: `https://${req.headers.host ?? 'localhost'}`,
        query: url.searchParams,
        body: parseJson(raw),
        recoveryLevel: recoveryLevelOf(deps.ctx.purgeProtection),
      };
      const out = await route(deps.ctx, vreq, segs);
      if (method !== 'GET' && out.status < 300) deps.afterChange();
      status = out.status;
      send(res, out.status, out.body);
    } catch (e) {
      if (e instanceof KvError) {
        status = e.status;
        send(res, e.status, e.body());
      } else {
        // A bug, not a client error: log the stack (never bodies or values).
        deps.log(`keyvault: internal error on ${method} ${url.pathname}: ${e instanceof Error ? e.stack : String(e)}`);
        status = 500;
        if (!res.headersSent) send(res, 500, { error: { code: 'InternalError', message: 'The emulator failed; see its log.' } });
      }
    } finally {
      deps.log(`keyvault: ${method} ${url.pathname} ${status} ${Date.now() - started}ms`);
    }
  };
  return createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    void handle(req, res);
  });
}
