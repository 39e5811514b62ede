import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';

/** Reads a CA file once; the result is trusted by one client, never process-wide. */
export function readCa(caFile: string | undefined): string | undefined {
  if (!caFile) return undefined;
  try {
    return readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read the CA file '${caFile}': ${(e as Error).message}`);
  }
}

export function httpsAgent(ca: string | undefined): Agent | undefined {
  return ca ? new Agent({ ca, keepAlive: true }) : undefined;
}
