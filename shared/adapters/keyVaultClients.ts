/**
 * Moved to `./keyVault/clients`. Kept only for `local/demo.ts` (owned elsewhere), which
 * imports the local credential from here; delete once it imports from the new place.
 */
export { emulatorCredential } from './keyVault/clients';
