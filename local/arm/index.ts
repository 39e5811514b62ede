/**
 * A local Azure Resource Manager endpoint for what Keyturn manages through ARM:
 * role assignments on the emulated vaults (and their keys and secrets), over the
 * same wire `@azure/arm-authorization`'s AuthorizationManagementClient uses. It shares
 * the vaults' `Authorization`, so an assignment made or removed here decides the
 * vault's next request. Tokens: the same unsigned JWTs (`oid`) as the vaults.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { callerObjectId } from '../keyvault/principals';
import type { Authorization } from '../keyvault/rbac';
import type { LocalTls } from '../tls';
import { ArmError, invalidRequest } from './errors';
import { handleRoleAssignments } from './roleAssignments';
import type { ArmTopology } from './scopes';
import { readBody as readRequestBody, sendJson } from '../httpBody';

export { API_VERSION } from './roleAssignments';

export interface ArmOptions {
  /** Default 8446; 0 picks a free port. */
  port?: number;
  tls: Pick<LocalTls, 'key' | 'cert'>;
  authorization: Authorization;
  topology: ArmTopology;
  /** Role assignments per list page (ARM's own is larger; small pages make paging visible). */
  pageSize?: number;
  log?: (line: string) => void;
}

export interface RunningArm {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 256 * 1024;
const CHALLENGE = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."';

function send(res: ServerResponse, status: number, payload?: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, payload, { 'x-ms-request-id': randomUUID(), 'x-ms-correlation-request-id': randomUUID(), ...headers });
}

/** The body as JSON (`undefined` when empty), with ARM's error shapes for too large and malformed. */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const raw = await readRequestBody(req, MAX_BODY, () => new ArmError(413, 'RequestEntityTooLarge', 'The request content is too large.'));
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest('The request content was invalid and could not be deserialized.');
  }
}

export async function startArm(options: ArmOptions): Promise<RunningArm> {
  const log = options.log ?? (() => undefined);
  const deps = { authorization: options.authorization, topology: options.topology, pageSize: options.pageSize ?? 20 };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    let status = 500;
    let pathname = '';
    try {
      // The client puts `/{scope}` after the host; a scope that starts with '/' gives '//'
      // (which `new URL` would read as a host name).
      const url = new URL((req.url ?? '/').replace(/^\/{2,}/, '/'), 'https://localhost');
      pathname = decodeURIComponent(url.pathname).replace(/\/{2,}/g, '/');
      const auth = req.headers.authorization;
      if (!auth) {
        req.resume();
        throw Object.assign(new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing."), { challenge: true });
      }
      const caller = callerObjectId(auth);
      if (!caller) {
        req.resume();
        throw Object.assign(new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid: locally it must be an unsigned JWT whose oid names a principal.'), { challenge: true });
      }
      const body = await readBody(req);
      const out = handleRoleAssignments(deps, { method, baseUrl: `https://${req.headers.host ?? 'localhost'}`, path: pathname, query: url.searchParams, body, caller });
      status = out.status;
      send(res, out.status, out.body);
    } catch (e) {
      if (e instanceof URIError) {
        status = 400;
        send(res, 400, new ArmError(400, 'InvalidRequestUri', 'The request URI is not valid.').body());
      } else if (e instanceof ArmError) {
        status = e.status;
        send(res, e.status, e.body(), (e as { challenge?: boolean }).challenge ? { 'www-authenticate': CHALLENGE } : {});
      } else {
        log(`arm: internal error on ${method} ${pathname}: ${e instanceof Error ? e.stack : String(e)}`);
        status = 500;
        if (!res.headersSent) send(res, 500, { error: { code: 'InternalServerError', message: 'The local ARM endpoint failed; see its log.' } });
      }
    } finally {
      log(`arm: ${method} ${pathname} ${status}`);
    }
  };
  const server = createServer({ key: options.tls.key, cert: options.tls.cert }, (req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8446, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  log(`arm: role assignments at ${url} (subscription ${options.topology.subscriptionId}, resource group ${options.topology.resourceGroup})`);
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
