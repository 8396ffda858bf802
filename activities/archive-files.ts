import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
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

export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/** Regular files under `folder` (forward-slash paths, code-unit order); links are skipped. */
export async function regularFiles(
  folder: string,
): Promise<{ files: string[]; skipped: string[] }> {
  const files: string[] = [];
  const skipped: string[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT') && prefix !== '') return;
      throw err;
    }
    for (const entry of entries) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path.join(dir, entry.name), rel);
      else if (entry.isFile()) files.push(rel);
      else skipped.push(rel);
    }
  }
  await walk(folder, '');
  return { files: files.sort(byCodeUnit), skipped: skipped.sort(byCodeUnit) };
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
