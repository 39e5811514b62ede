/**
 * Shared by the tenant-keys part 2 integration tests: the requester's tool is `openssl`
 * (a child process, in a temp dir), the client is `jose`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactEncrypt, importJWK } from 'jose';
import { type TestStack, call } from '../../helpers/stack';

/** A scratch directory where `sh -c` runs the docs' openssl and jq commands. */
export function workdir() {
  const dir = mkdtempSync(join(tmpdir(), 'keyturn-export-'));
  return {
    dir,
    sh: (command: string) => execFileSync('sh', ['-c', command], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    read: (name: string) => readFileSync(join(dir, name), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function api(stack: TestStack, hostUrl = stack.host!.url) {
  const base = `${hostUrl}/api`;
  const post = (path: string, body: unknown) => call('POST', `${base}/${path}`, { body });
  const get = (path: string) => call('GET', `${base}/${path}`);
  /** Content protected offline with jose and the published key (what a client does). */
  const protect = async (tenantId: string, plaintext: string) => {
    const [jwk] = (await get(`tenants/${tenantId}/keys`)).json<{ keys: Record<string, string>[] }>().keys;
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk!.kid })
      .encrypt(await importJWK(jwk!, 'RSA-OAEP-256'));
  };
  const unprotect = async (tenantId: string, jwe: string) => {
    const res = await post(`tenants/${tenantId}/unprotect`, { jwe });
    return res.status === 200 ? Buffer.from(res.json().plaintext, 'base64').toString('utf8') : res.status;
  };
  return { base, post, get, protect, unprotect };
}
