/**
 * Verify an incident's record by hand, independently of the app's code: reads the
 * entries straight from Cosmos DB, recomputes every hash (SHA-256 over the RFC 8785
 * canonical JSON of the chained fields), checks each link, then reads every version of
 * the checkpoint secret `incident-{id}-head` with SecretClient and checks each against
 * the entry at its seq. With `npm start` (or `npm run stack`) running, after `npm run build`:
 *
 *   node dist/local/verifyIncident.js <incidentId>
 *
 * Defaults are the local stack's (KEYTURN_COSMOS_*, KEYTURN_VAULTS' first vault and the
 * CA in .keyturn/keyvault/ca.pem); set those variables to point elsewhere. Prints one
 * line per problem and exits 1 if there is any.
 *
 * A deliberate subset of `GET /api/incidents/{id}/verify`, kept apart from the app's code
 * so it can check the app: the chain and every checkpoint version, and whether the
 * checkpoint secret is soft-deleted (as a problem). It does not check the ledger of closed
 * incidents against the head, does not find incidents whose documents are gone, and
 * repairs nothing (no lagging checkpoint is written) — the verify routes do those.
 */
import { CosmosClient } from '@azure/cosmos';
import { SecretClient } from '@azure/keyvault-secrets';
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { emulatorCredential } from '../shared/adapters/keyVault/clients';

const env = process.env;
const CHAINED = ['incidentId', 'seq', 'at', 'event', 'actor', 'claimedBy', 'evidence', 'prevHash'] as const;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function main(incidentId: string): Promise<number> {
  const ca = readFileSync(env.KEYTURN_COSMOS_CA_FILE ?? '.keyturn/keyvault/ca.pem', 'utf8');
  const cosmos = new CosmosClient({
    endpoint: env.KEYTURN_COSMOS_ENDPOINT ?? 'https://127.0.0.1:8081',
    key: env.KEYTURN_COSMOS_KEY ?? 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==',
    agent: new Agent({ ca }),
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  const container = cosmos.database(env.KEYTURN_COSMOS_DATABASE ?? 'keyturn').container('incidentEntries');
  const { resources } = await container.items
    .query<Record<string, unknown> & { seq: number; hash: string; prevHash: string }>({ query: 'SELECT * FROM c WHERE c.incidentId = @id', parameters: [{ name: '@id', value: incidentId }] })
    .fetchAll();
  const entries = resources.sort((a, b) => a.seq - b.seq);
  const problems: string[] = [];
  let prev = '0'.repeat(64);
  entries.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push(`seq ${i + 1}: missing (found seq ${e.seq} there)`);
    const body = Object.fromEntries(CHAINED.map((k) => [k, e[k]]));
    if (sha256(canonicalize(body)!) !== e.hash) problems.push(`seq ${e.seq}: hash does not match its fields (modified)`);
    if (e.prevHash !== prev) problems.push(`seq ${e.seq}: prevHash is not the hash of the entry before (broken link)`);
    prev = e.hash;
  });

  const vaultUrl = (env.KEYTURN_VAULTS ?? 'local=https://127.0.0.1:8443').split(',')[0]!.split('=')[1]!;
  const vaultCa = env.KEYTURN_KEYVAULT_CA_FILE ? readFileSync(env.KEYTURN_KEYVAULT_CA_FILE, 'utf8') : ca;
  const secrets = new SecretClient(vaultUrl, emulatorCredential, { disableChallengeResourceVerification: true, tlsOptions: { ca: vaultCa } });
  const name = `incident-${incidentId}-head`;
  let checkpoints = 0;
  const deleted = await secrets.getDeletedSecret(name).catch((e: { statusCode?: number }) => {
    // 404: not deleted; 403: no deletedSecrets/read (Key Vault Reader) — then it is not looked for.
    if (e.statusCode === 404 || e.statusCode === 403) return undefined;
    throw e;
  });
  if (deleted) {
    const vaultName = new URL(vaultUrl).hostname.split('.')[0];
    problems.push(`checkpoint secret ${name} is soft-deleted: nothing can be checked against it (az keyvault secret recover --vault-name ${vaultName} --name ${name})`);
  }
  for await (const version of deleted ? [] : secrets.listPropertiesOfSecretVersions(name)) {
    const checkpoint = JSON.parse((await secrets.getSecret(name, { version: version.version })).value!) as { seq: number; hash: string };
    checkpoints++;
    const entry = entries.find((e) => e.seq === checkpoint.seq);
    if (!entry) problems.push(`checkpoint ${version.version}: seq ${checkpoint.seq} is not in the chain (truncated or deleted)`);
    else if (entry.hash !== checkpoint.hash) problems.push(`checkpoint ${version.version}: seq ${checkpoint.seq} has another hash (rewritten)`);
  }
  console.log(`${incidentId}: ${entries.length} entries, ${checkpoints} checkpoints, ${problems.length === 0 ? 'ok' : `${problems.length} problem(s)`}`);
  for (const p of problems) console.log(`  ${p}`);
  return problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
  const id = process.argv[2];
  if (!id) {
    console.error('usage: node dist/local/verifyIncident.js <incidentId>');
    process.exit(2);
  }
  main(id).then((code) => process.exit(code), (e: Error) => {
    console.error(e.message);
    process.exit(2);
  });
}
