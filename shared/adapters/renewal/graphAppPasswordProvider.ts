/**
 * `entra-app-password`: Microsoft Graph `addPassword` / `removePassword` on the
 * application (by object id). The password's `displayName` carries the step token,
 * so a resumed step can find what an earlier claim created. Graph returns
 * `secretText` once, at creation: it goes straight into a SecretValue.
 *
 * Calls (v1.0): POST /applications/{id}/addPassword {passwordCredential:{displayName,endDateTime}}
 * → {keyId, secretText, hint, …}; POST /applications/{id}/removePassword {keyId} → 204;
 * GET /applications/{id}?$select=passwordCredentials.
 */
import type { TokenCredential } from '@azure/identity';
import { request as httpRequest } from 'node:http';
import { z } from 'zod';
import { KeyturnError, statusOf } from '../../errors';
import { type CredentialProvider, type ProviderContext, SecretValue } from '../../services/renewal/ports';
import { type AgentSource, https } from '../tlsAgent';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const TIMEOUT_MS = 30_000;

/**
 * A failed Graph call, shaped like an SDK's RestError (name, code, statusCode) so the
 * one reader of error facts (`shared/errors.ts`) classifies it. Graph's message is not
 * echoed: only the operation, status and error code.
 */
export type GraphError = Error & { name: 'GraphError'; statusCode: number; code: string };

export function graphError(statusCode: number, code: string, operation: string): GraphError {
  const e = new Error(`Microsoft Graph ${operation} failed with ${statusCode}${code ? ` (${code})` : ''}`);
  return Object.assign(e, { name: 'GraphError' as const, statusCode, code });
}

const isGraphError = (e: unknown): e is GraphError => e instanceof Error && e.name === 'GraphError';

/** Graph's reply shapes, built at the first Graph call: module load stays registration only (cold start). */
let replies: ReturnType<typeof replySchemas> | undefined;
function replySchemas() {
  return {
    passwordList: z.object({
      passwordCredentials: z.array(
        z.object({
          keyId: z.string(),
          displayName: z.string().nullable().optional(),
          endDateTime: z.string().nullable().optional(),
          hint: z.string().nullable().optional(),
        }),
      ),
    }),
    addedPassword: z.object({ keyId: z.string().min(1), secretText: z.string().min(1), hint: z.string().nullable().optional() }),
  };
}
const schemas = () => (replies ??= replySchemas());

export const displayNameFor = (token: string): string => `keyturn ${token}`;

export interface GraphOptions {
  /** e.g. https://graph.microsoft.com (KEYTURN_GRAPH_ENDPOINT). */
  endpoint: string;
  credential: TokenCredential;
  /** Trusts a local stub's CA; undefined in Azure. */
  agent?: AgentSource;
}

export function graphAppPasswordProvider(options: GraphOptions): CredentialProvider {
  const base = options.endpoint.replace(/\/$/, '');

  async function call(method: 'GET' | 'POST', path: string, operation: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const token = await options.credential.getToken(GRAPH_SCOPE);
    if (!token) throw graphError(401, 'NoToken', operation);
    const url = new URL(`${base}/v1.0${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token.token}`, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req =
        url.protocol === 'https:'
          ? https().request(url, { method, headers, agent: options.agent?.() })
          : httpRequest(url, { method, headers });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', (e) => reject(graphError(0, (e as NodeJS.ErrnoException).code ?? 'NetworkError', operation)));
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')));
      req.end(payload);
    });
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (status < 200 || status > 299) {
      const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
      throw graphError(status, typeof code === 'string' ? code.slice(0, 100) : '', operation);
    }
    return { status, json };
  }

  const objectIdOf = (ctx: ProviderContext): string => {
    const id = ctx.credential.appObjectId;
    if (!id) throw new KeyturnError('NOT_MANAGED', `credential ${ctx.name} has no application object id`);
    return encodeURIComponent(id);
  };

  async function passwords(ctx: ProviderContext) {
    const { json } = await call('GET', `/applications/${objectIdOf(ctx)}?$select=passwordCredentials`, 'get application');
    const parsed = schemas().passwordList.safeParse(json);
    if (!parsed.success) throw graphError(502, 'UnexpectedResponse', 'get application');
    return parsed.data.passwordCredentials;
  }

  return {
    kind: 'entra-app-password',
    async create(ctx, token, expiresOn) {
      const { json } = await call('POST', `/applications/${objectIdOf(ctx)}/addPassword`, 'addPassword', {
        passwordCredential: { displayName: displayNameFor(token), endDateTime: expiresOn.toISOString() },
      });
      const parsed = schemas().addedPassword.safeParse(json);
      if (!parsed.success) throw graphError(502, 'UnexpectedResponse', 'addPassword');
      return { value: new SecretValue(parsed.data.secretText), ref: parsed.data.keyId };
    },
    async findTagged(ctx, tokens) {
      if (tokens.length === 0) return [];
      const found: { ref: string; token: string }[] = [];
      for (const p of await passwords(ctx)) {
        const token = tokens.find((t) => p.displayName === displayNameFor(t));
        if (token) found.push({ ref: p.keyId, token });
      }
      return found;
    },
    async verify(ctx, value, ref, now) {
      if (!ref) throw new KeyturnError('VERIFY_MISMATCH', 'the pending password has no keyId');
      const p = (await passwords(ctx)).find((c) => c.keyId === ref);
      // Graph may take a moment to show a new password: the step is retried with backoff.
      if (!p) throw new KeyturnError('VERIFY_NOT_REPLICATED', `password ${ref} is not (yet) on the application`);
      if (p.endDateTime && Date.parse(p.endDateTime) <= now.getTime()) throw new KeyturnError('VERIFY_MISMATCH', `password ${ref} has already ended`);
      // Graph's hint is the first characters of the secret text: the stored value must be this password's.
      if (p.hint && !value.reveal().startsWith(p.hint)) throw new KeyturnError('VERIFY_MISMATCH', `the pending value does not belong to password ${ref}`);
    },
    async remove(ctx, ref) {
      // No listing first: a new password may not be listed yet (replication) and must still go.
      try {
        await call('POST', `/applications/${objectIdOf(ctx)}/removePassword`, 'removePassword', { keyId: ref });
      } catch (e) {
        if (!(isGraphError(e) && (statusOf(e) === 404 || statusOf(e) === 400))) throw e;
        if ((await passwords(ctx)).some((c) => c.keyId === ref)) throw e; // really still there
      }
    },
  };
}
