import yauzl from 'yauzl';
import {
  archiveManifestFile,
  archiveManifestSchema,
  type ArchiveManifest,
} from '../contracts/data-runbooks.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { describeZodError } from '../contracts/validation.js';

/** A manifest lists every file with its hash: a million files fit. */
export const maxManifestBytes = 256 * 1024 * 1024;

/** Reads one entry of a zip, bounded; undefined when the zip has no such entry. */
export async function readZipEntry(
  file: string,
  name: string,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const zip = await yauzl.openPromise(file, {
    lazyEntries: true,
    autoClose: false,
    validateEntrySizes: true,
  });
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== name) continue;
      if (entry.uncompressedSize > maxBytes) {
        throw new Error(`${name} declares ${entry.uncompressedSize} bytes, over ${maxBytes}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new Error(`${name} inflates past ${maxBytes} bytes`);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    }
    return undefined;
  } finally {
    zip.close();
  }
}

export function parseManifest(text: string, where: string): ArchiveManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${where}: its ${archiveManifestFile} is not JSON (${(err as Error).message})`,
    );
  }
  const parsed = archiveManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${where}: its ${archiveManifestFile} is not a clusterguard archive manifest: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/**
 * The manifest of a clusterguard data archive and its bytes, read without extracting anything
 * else; a zip that is not one (or not a zip) is an UnsafeArchive naming `where`. Errors of the
 * disk itself (permissions, I/O) are rethrown as they are: they say nothing of the archive.
 */
export async function readArchiveManifest(
  file: string,
  where: string,
): Promise<{ manifest: ArchiveManifest; text: Buffer }> {
  let text: Buffer | undefined;
  try {
    text = await readZipEntry(file, archiveManifestFile, maxManifestBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (['EACCES', 'EIO', 'EMFILE'].includes(code)) throw err;
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${where} is not a readable zip archive: truncated, corrupt or with unsafe entry names (${(err as Error).message})`,
    );
  }
  if (!text) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${where} has no ${archiveManifestFile}: it is not a clusterguard data archive`,
    );
  }
  return { manifest: parseManifest(text.toString('utf8'), where), text };
}
