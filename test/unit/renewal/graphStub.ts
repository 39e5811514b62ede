/**
 * A local stand-in for Microsoft Graph (which cannot run here) that speaks Graph's
 * wire format for exactly the calls Keyturn makes on an application:
 *   POST /v1.0/applications/{objectId}/addPassword   {passwordCredential:{displayName,endDateTime}} → 200 passwordCredential with secretText
 *   POST /v1.0/applications/{objectId}/removePassword {keyId} → 204 (400 when no such password)
 *   GET  /v1.0/applications/{objectId}?$select=passwordCredentials → 200 {passwordCredentials:[…]} (no secretText)
 * It listens on 127.0.0.1 only, requires a Bearer token, and can be told to fail.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';

export interface StubPassword {
  keyId: string;
  displayName: string | null;
  endDateTime: string;
  startDateTime: string;
  hint: string;
  secretText: string;
}

export interface GraphStub {
  url: string;
  /** Registers an application (object id) with optional existing passwords. */
  addApp(objectId: string, passwords?: StubPassword[]): void;
  passwords(objectId: string): StubPassword[];
  /** Every secretText ever issued (to scan logs and stores for leaks). */
  issuedSecrets(): string[];
  calls: { method: string; path: string }[];
  /** The next `count` requests (optionally only to `path` containing `match`) fail with `status`. */
  failNext(count: number, status: number, match?: string): void;
  /** New passwords stay invisible to GET (Graph's replication delay) while true. */
  hideNewPasswords: boolean;
  stop(): Promise<void>;
}

export function existingPassword(displayName = 'created by hand'): StubPassword {
  const secretText = randomBytes(30).toString('base64url');
  return {
    keyId: randomUUID(),
    displayName,
    endDateTime: new Date(Date.now() + 30 * 86_400_000).toISOString(),
    startDateTime: new Date().toISOString(),
    hint: secretText.slice(0, 3),
    secretText,
  };
}

export async function startGraphStub(): Promise<GraphStub> {
  const apps = new Map<string, StubPassword[]>();
  const hidden = new Set<string>();
  const issued: string[] = [];
  const calls: { method: string; path: string }[] = [];
  const failures: { left: number; status: number; match?: string }[] = [];

  const send = (res: ServerResponse, status: number, body?: unknown) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(text);
  };
  const graphError = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } });
  const body = (req: IncomingMessage) =>
    new Promise<unknown>((resolve) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => {
        try {
          resolve(text ? JSON.parse(text) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
  const visible = (p: StubPassword) => {
    const { secretText, ...rest } = p;
    void secretText;
    return { customKeyIdentifier: null, ...rest };
  };

  const stub: GraphStub = {
    url: '',
    addApp: (objectId, passwords = []) => void apps.set(objectId.toLowerCase(), [...passwords]),
    passwords: (objectId) => [...(apps.get(objectId.toLowerCase()) ?? [])],
    issuedSecrets: () => [...issued],
    calls,
    failNext: (count, status, match) => void failures.push({ left: count, status, match }),
    hideNewPasswords: false,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    calls.push({ method: req.method ?? '', path: url.pathname });
    const payload = await body(req);
    if (!/^Bearer \S+$/.test(req.headers.authorization ?? '')) {
      return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.');
    }
    const failure = failures.find((f) => f.left > 0 && (!f.match || url.pathname.includes(f.match)));
    if (failure) {
      failure.left--;
      return graphError(res, failure.status, failure.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable', 'Injected failure');
    }
    const m = /^\/v1\.0\/applications\/([^/]+)(\/addPassword|\/removePassword)?$/.exec(url.pathname);
    const passwords = m ? apps.get(decodeURIComponent(m[1]!).toLowerCase()) : undefined;
    if (!m || !passwords) return graphError(res, 404, 'Request_ResourceNotFound', 'Resource does not exist.');
    if (req.method === 'GET' && !m[2]) {
      if (url.searchParams.get('$select') !== 'passwordCredentials') return graphError(res, 400, 'BadRequest', 'Unsupported query.');
      return send(res, 200, {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#applications(passwordCredentials)/$entity',
        passwordCredentials: passwords.filter((p) => !(stub.hideNewPasswords && hidden.has(p.keyId))).map(visible),
      });
    }
    if (req.method === 'POST' && m[2] === '/addPassword') {
      const pc = (payload as { passwordCredential?: { displayName?: string; endDateTime?: string } } | undefined)?.passwordCredential;
      if (!pc) return graphError(res, 400, 'BadRequest', 'passwordCredential is required.');
      const secretText = randomBytes(30).toString('base64url');
      issued.push(secretText);
      const created: StubPassword = {
        keyId: randomUUID(),
        displayName: pc.displayName ?? null,
        endDateTime: pc.endDateTime ?? new Date(Date.now() + 2 * 365 * 86_400_000).toISOString(),
        startDateTime: new Date().toISOString(),
        hint: secretText.slice(0, 3),
        secretText,
      };
      passwords.push(created);
      if (stub.hideNewPasswords) hidden.add(created.keyId);
      return send(res, 200, {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordCredential',
        customKeyIdentifier: null,
        ...created,
      });
    }
    if (req.method === 'POST' && m[2] === '/removePassword') {
      const keyId = (payload as { keyId?: string } | undefined)?.keyId;
      const index = passwords.findIndex((p) => p.keyId === keyId);
      if (index < 0) return graphError(res, 400, 'Request_BadRequest', 'No password credential found with the given keyId.');
      passwords.splice(index, 1);
      return send(res, 204);
    }
    return graphError(res, 405, 'Request_BadRequest', 'Unsupported method.');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  stub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return stub;
}
