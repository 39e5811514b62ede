/**
 * Tenant keys: `POST /api/tenants/{id}/unprotect` through the app vs the bare floor of
 * the same work in the same run — the JWE's content key unwrapped with a Key Vault
 * `unwrapKey` (RSA-OAEP-256, the same SDK, the same emulator and key version) and the
 * content decrypted with AES-256-GCM (node:crypto). Alternating rounds after a warm-up
 * of both, so a change in the machine's load affects both alike.
 */
import { CryptographyClient } from '@azure/keyvault-keys';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { CONCURRENCY, type LoadResult, expectStatus, fmt, httpClient, load, loadTable, rate, scaled } from './lib';
import { keyVaultClientOptions, staticCredential, startApp } from './stack';

const OPS = scaled(400, 10);
const ROUNDS = scaled(3, 1);
const PHASE_MAX_MS = scaled(15_000, 3000);
const PLAINTEXT_BYTES = 1024;

/** The compact JWE's parts, as the bare path needs them. */
function parts(jwe: string) {
  const [header, key, iv, ciphertext, tag] = jwe.split('.') as [string, string, string, string, string];
  const b = (s: string) => Buffer.from(s, 'base64url');
  return { aad: Buffer.from(header, 'ascii'), encryptedKey: b(key), iv: b(iv), ciphertext: b(ciphertext), tag: b(tag), kid: (JSON.parse(b(header).toString('utf8')) as { kid: string }).kid };
}

/** Sums rounds of one kind into one row (ops, elapsed and latencies together). */
function merged(label: string, rounds: LoadResult[]): LoadResult {
  return {
    ...rounds[0]!,
    label,
    ops: rounds.reduce((n, r) => n + r.ops, 0),
    elapsedMs: rounds.reduce((n, r) => n + r.elapsedMs, 0),
    latenciesMs: rounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b),
  };
}

export async function run(): Promise<void> {
  const app = await startApp();
  const http = httpClient({ maxSockets: CONCURRENCY });
  try {
    const tenantId = `bench-${randomBytes(4).toString('hex')}`;
    expectStatus(await http.call('POST', `${app.url}/api/tenants`, { body: { tenantId, topology: 'service-managed' } }), 201, 'POST /api/tenants');
    const plaintext = randomBytes(PLAINTEXT_BYTES);
    const protectedReply = expectStatus(
      await http.call('POST', `${app.url}/api/tenants/${tenantId}/protect`, { body: { plaintext: plaintext.toString('base64') } }),
      200,
      'POST /protect',
    );
    const { jwe } = JSON.parse(protectedReply.text) as { jwe: string };
    const p = parts(jwe);
    const crypto = new CryptographyClient(p.kid, staticCredential, keyVaultClientOptions(app.ca));

    const viaApp = async () => {
      const reply = expectStatus(await http.call('POST', `${app.url}/api/tenants/${tenantId}/unprotect`, { body: { jwe } }), 200, 'POST /unprotect');
      if (!Buffer.from((JSON.parse(reply.text) as { plaintext: string }).plaintext, 'base64').equals(plaintext)) throw new Error('unprotect answered another plaintext');
    };
    const bare = async () => {
      const { result: cek } = await crypto.unwrapKey('RSA-OAEP-256', p.encryptedKey);
      const decipher = createDecipheriv('aes-256-gcm', cek, p.iv).setAAD(p.aad).setAuthTag(p.tag);
      if (!Buffer.concat([decipher.update(p.ciphertext), decipher.final()]).equals(plaintext)) throw new Error('the bare decrypt gave another plaintext');
    };
    // Warm-up: connections, the SDK's auth challenge, the app's first tenant read.
    for (let i = 0; i < 3; i++) await Promise.all([viaApp(), bare()]);

    const appRounds: LoadResult[] = [];
    const bareRounds: LoadResult[] = [];
    let appKv = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const before = app.kvRequests.length;
      appRounds.push(await load('unprotect (app)', { ops: Math.ceil(OPS / ROUNDS), maxMs: PHASE_MAX_MS }, viaApp));
      appKv += app.kvRequests.length - before;
      bareRounds.push(await load('bare', { ops: Math.ceil(OPS / ROUNDS), maxMs: PHASE_MAX_MS }, bare));
    }
    const viaAppRow = merged(`POST /unprotect (app, ${PLAINTEXT_BYTES} B)`, appRounds);
    const bareRow = merged('bare unwrapKey + AES-256-GCM decrypt', bareRounds);
    console.log(`tenantKeys: unprotect through the app vs a bare Key Vault unwrapKey + AES-256-GCM decrypt (same SDK, key version), ${CONCURRENCY} concurrent, ${ROUNDS} alternating rounds`);
    console.log(loadTable([viaAppRow, bareRow]));
    console.log(`  Key Vault requests per unprotect (app): ${fmt(appKv / viaAppRow.ops, 2)} (bare: 1, the unwrapKey)`);
    console.log(`  ratios: unprotect throughput app / bare = ${fmt(rate(viaAppRow) / rate(bareRow))}x`);
  } finally {
    http.close();
    await app.close();
  }
}
