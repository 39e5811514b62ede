/**
 * The Key Vault emulator alone, through the real SDK clients: the cost floor under
 * every renewal (secrets) and every token (sign). No app, no Event Grid.
 */
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeyVaultEmulator } from '../local/keyvault';
import { CONCURRENCY, load, loadTable, rate, ratio, scaled } from './lib';
import { keyVaultClientOptions, running, staticCredential } from './stack';

const OPS = scaled(1000, 20);
const PHASE_MAX_MS = scaled(15_000, 2000);

export async function run(): Promise<void> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-bench-tls-'));
  // Faults off explicitly: KEYVAULT_FAULTS in the environment would otherwise apply.
  const emulator = await startKeyVaultEmulator({ port: 0, tlsDir, faults: { rate: 0 } });
  const close = async () => {
    running.delete(close);
    await emulator.close();
    await rm(tlsDir, { recursive: true, force: true });
  };
  running.add(close);
  try {
    const options = keyVaultClientOptions(emulator.ca);
    const secrets = new SecretClient(emulator.url, staticCredential, options);
    const keys = new KeyClient(emulator.url, staticCredential, options);
    await keys.createRsaKey('bench-rsa', { keySize: 2048 });
    await keys.createEcKey('bench-ec', { curve: 'P-256' });
    const rsa = keys.getCryptographyClient('bench-rsa');
    const ec = keys.getCryptographyClient('bench-ec');
    // Both algorithms sign a SHA-256 digest, as a JWT signer does.
    const digest = createHash('sha256').update(randomBytes(64)).digest();
    // Warm-up: the SDK's auth challenge and each crypto client's first key fetch are not what is measured.
    await secrets.setSecret('bench-secret', randomBytes(32).toString('base64'));
    await rsa.sign('RS256', digest);
    await ec.sign('ES256', digest);

    const set = await load('setSecret', { ops: OPS, maxMs: PHASE_MAX_MS }, () => secrets.setSecret('bench-secret', randomBytes(32).toString('base64')));
    const get = await load('getSecret', { ops: OPS, maxMs: PHASE_MAX_MS }, () => secrets.getSecret('bench-secret'));
    const rs = await load('sign RS256 (RSA-2048)', { ops: OPS, maxMs: PHASE_MAX_MS }, () => rsa.sign('RS256', digest));
    const es = await load('sign ES256 (P-256)', { ops: OPS, maxMs: PHASE_MAX_MS }, () => ec.sign('ES256', digest));
    console.log(`keyvault: emulator alone through @azure/keyvault-secrets / -keys, ${CONCURRENCY} concurrent`);
    console.log(loadTable([set, get, rs, es]));
    console.log(
      `  ratios: RS256 / ES256 throughput = ${ratio(rate(rs), rate(es))}, getSecret / setSecret = ${ratio(rate(get), rate(set))}, ` +
        `getSecret / sign RS256 = ${ratio(rate(get), rate(rs))}`,
    );
  } finally {
    await close();
  }
}
