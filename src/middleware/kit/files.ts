import { cp, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataResult } from './types.js';

/** Empties a folder (keeps the folder itself): join/rejoin wipe data (docs/design.md). */
export async function wipeFolder(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
}

/** Writes generated files (relative path → text) under `folder`, replacing what was there. */
export async function writeFiles(folder: string, files: Record<string, string>): Promise<void> {
  await wipeFolder(folder);
  for (const [rel, text] of Object.entries(files)) {
    const target = path.join(folder, rel);
    if (!target.startsWith(folder + path.sep))
      throw new Error(`refusing to write ${rel} outside ${folder}`);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, text);
  }
}

/** Replaces `to` with a copy of `from` (applying a downloaded or generated configuration). */
export async function replaceFolder(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(path.dirname(to), { recursive: true });
  await cp(from, to, { recursive: true });
}

/** Every file under `folder` with its size, for a DataResult. */
export async function listData(folder: string): Promise<DataResult> {
  const files: DataResult['files'] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile())
        files.push({ path: path.relative(folder, full), bytes: (await stat(full)).size });
    }
  }
  await walk(folder);
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { folder, files };
}

/** Whether `folder` is empty or missing. */
export async function isEmptyFolder(folder: string): Promise<boolean> {
  try {
    return (await readdir(folder)).length === 0;
  } catch {
    return true;
  }
}

/** Moves a folder (replacing `to`); falls back to copying across file systems. */
export async function moveFolder(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await cp(from, to, { recursive: true, verbatimSymlinks: true });
    await rm(from, { recursive: true, force: true });
  }
}
