/** Key-set export files in Blob storage (`keyset-exports`), create-only. */
import type { BlobServiceClient } from '@azure/storage-blob';
import { dependencyError, statusOf } from '../../errors';
import { conflict } from '../../errors';
import type { ExportFiles } from '../../services/keySets/ports';

export function blobExportFiles(blobs: () => BlobServiceClient): ExportFiles {
  const made = new Set<string>();
  return {
    async write(container, name, content) {
      try {
        const client = blobs().getContainerClient(container);
        if (!made.has(container)) {
          await client.createIfNotExists();
          made.add(container);
        }
        await client.getBlockBlobClient(name).uploadData(content, {
          conditions: { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
      } catch (e) {
        if (statusOf(e) === 409 || statusOf(e) === 412) throw conflict(`Export file '${container}/${name}' exists already`, { blobName: name });
        throw dependencyError('Could not write the export file to Blob storage', e, { container });
      }
    },
  };
}
