import { readFileSync } from 'node:fs';
import type { Agent } from 'node:https';

/** Reads a CA file once; the result is trusted by one client, never process-wide. */
export function readCa(caFile: string | undefined): string | undefined {
  if (!caFile) return undefined;
  try {
    return readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read the CA file '${caFile}': ${(e as Error).message}`);
  }
}

/** An https agent built at its first use (undefined without a CA: the default agent). */
export type AgentSource = () => Agent | undefined;

/**
 * The agent trusting `ca`, built when first asked for: `node:https` (and `node:tls`
 * under it) load at the first https request, not at cold start.
 */
export function httpsAgent(ca: string | undefined): AgentSource {
  let agent: Agent | undefined;
  return () => {
    if (!ca) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use (cold start)
    agent ??= new (require('node:https') as typeof import('node:https')).Agent({ ca, keepAlive: true });
    return agent;
  };
}

/** `node:https`, loaded at its first use. */
export const https = (): typeof import('node:https') => require('node:https') as typeof import('node:https');
