/** What HTTP reads of renewal: the managed credentials and one rotation. */
import { notFound } from '../../errors';
import { isPendingSecretName, readCredentialTags } from '../../domain/managedCredential';
import { ROTATION_ID } from '../../domain/rotation';
import { type RenewalContext, tagDefaults } from './context';
import { credentialView, rotationView } from './views';

export async function listCredentials(c: RenewalContext) {
  const { secrets, rotations, settings, clock } = c.deps;
  const now = await clock.now();
  const out = [];
  for (const vault of Object.keys(settings.vaults)) {
    for (const item of await secrets.list(vault)) {
      if (isPendingSecretName(item.name)) continue;
      const reading = readCredentialTags(item.tags, tagDefaults(settings), item.name);
      if (reading.kind === 'unmanaged') continue;
      const latest = await secrets.latest(vault, item.name);
      if (!latest) continue;
      const latestRotation = (await rotations.forCredential(vault, item.name)).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
      out.push(credentialView(vault, latest, reading, latestRotation, now));
    }
  }
  return out;
}

export async function getRotation(c: RenewalContext, id: string) {
  if (!ROTATION_ID.test(id)) throw notFound(`Rotation '${id}'`);
  const stored = await c.deps.rotations.read(id);
  if (!stored) throw notFound(`Rotation '${id}'`, { rotationId: id });
  return rotationView(stored.doc, await c.deps.clock.now());
}
