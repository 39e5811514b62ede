import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The CA of the running local stack (`npm start` writes it), which every demo trusts;
 * KEYTURN_DEMO_CA_FILE names another. A clear error when the stack has not run yet.
 */
export function readDemoCa(): string {
  const file = process.env.KEYTURN_DEMO_CA_FILE ?? join(process.cwd(), '.keyturn', 'keyvault', 'ca.pem');
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new Error(`No CA at ${file}: start the local stack first with \`npm start\` (or \`npm run stack\`).`);
  }
}
