import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files on disk as archives and the cluster store handle them: folders listed in an order that
 * does not depend on the host, and files replaced through a temp file beside them.
 */

/** Code-unit order, not localeCompare: the order must not depend on the host's locale. */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isErrno(error: unknown, ...codes: string[]): error is NodeJS.ErrnoException {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/**
 * Regular files under `folder`, as forward-slash paths relative to it in code-unit order.
 * Symlinks are skipped, never followed: following one could pull a file from outside the folder
 * (say /etc/shadow) into an archive that is shipped to another node. Sockets, FIFOs and devices
 * are skipped too. With `vanished: 'skip'` a subfolder removed while it is read is left out;
 * otherwise that is an error.
 */
export async function regularFiles(
  folder: string,
  vanished: 'skip' | 'fail' = 'fail',
): Promise<{ files: string[]; skipped: string[] }> {
  const files: string[] = [];
  const skipped: string[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (vanished === 'skip' && isErrno(err, 'ENOENT') && prefix !== '') return;
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

/**
 * A temp path hidden and unique beside `target`: never the target's name, so no reader opens it,
 * and a crash leaves only a stray file that nothing reads.
 */
export function tempBeside(target: string, suffix: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomUUID()}${suffix}`,
  );
}

/** Fsyncs a folder after a rename in it. Best effort: some file systems cannot fsync a folder. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The rename is done; without the folder's fsync only a power loss can undo it.
  }
}
