/**
 * One local certificate authority for the whole local stack (Key Vault emulator,
 * local Event Grid, Cosmos server). Clients trust it per client (`tlsOptions: { ca }`
 * or an `https.Agent({ ca })`), never by turning TLS checks off for the process.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface LocalTls {
  /** PEM of the CA certificate clients must trust. */
  ca: string;
  /** PEM server certificate (SANs localhost, 127.0.0.1, ::1) signed by the CA. */
  cert: string;
  /** PEM private key of the server certificate. */
  key: string;
  /** Path of the CA certificate file (`{dir}/ca.pem`). */
  caFile: string;
}

const FILES = ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem'] as const;

async function readAll(dir: string): Promise<string[] | undefined> {
  try {
    return await Promise.all(FILES.map((f) => readFile(join(dir, f), 'utf8')));
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, path);
}

/** Creates the CA and server certificate on first use and reuses them afterwards. */
export async function ensureLocalTls(dir: string): Promise<LocalTls> {
  const caFile = join(dir, 'ca.pem');
  const existing = await readAll(dir);
  if (existing) {
    const [ca, , cert, key] = existing as [string, string, string, string];
    return { ca, cert, key, caFile };
  }
  await mkdir(dir, { recursive: true });
  const notBeforeDate = new Date(Date.now() - 24 * 3600 * 1000);
  const notAfterDate = new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000);
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'Keyturn local CA' }], {
    keySize: 2048,
    notBeforeDate,
    notAfterDate,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    notBeforeDate,
    notAfterDate,
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  const contents = [ca.cert, ca.private, server.cert, server.private];
  await Promise.all(FILES.map((f, i) => writeAtomic(join(dir, f), contents[i] as string)));
  return { ca: ca.cert, cert: server.cert, key: server.private, caFile };
}
