import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { regularFiles as listFiles } from '../src/archive/files.js';
import type {
  ArchiveManifest,
  ManifestFile,
  ManifestSummary,
} from '../src/contracts/data-runbooks.js';

/** What a long file operation reports to its activity's heartbeat, and how it is cancelled. */
export interface Progress {
  signal: AbortSignal;
  set(detail: string): void;
}

export { byCodeUnit, isErrno } from '../src/archive/files.js';

/** Regular files under `folder` (forward-slash paths, code-unit order); links are skipped. */
export function regularFiles(folder: string): Promise<{ files: string[]; skipped: string[] }> {
  return listFiles(folder, 'skip');
}

export async function sha256File(
  file: string,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { signal }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export async function hashFiles(
  folder: string,
  rels: readonly string[],
  beat: Progress,
): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  for (const [i, rel] of rels.entries()) {
    beat.signal.throwIfAborted();
    beat.set(`hashing ${rel} (${i + 1}/${rels.length})`);
    out.push({
      path: rel,
      ...(await sha256File(path.join(folder, ...rel.split('/')), beat.signal)),
    });
  }
  return out;
}

export function summary(manifest: ArchiveManifest): ManifestSummary {
  const out: ManifestSummary & { files?: unknown } = { ...manifest };
  delete out.files;
  return out;
}
