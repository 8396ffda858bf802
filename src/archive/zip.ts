import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ZipArchive } from 'archiver';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { ClusterGuardError } from '../contracts/errors.js';
import { isErrno, regularFiles, syncDirectory, tempBeside } from './files.js';

export interface ZipResult {
  file: string;
  sha256: string;
  /** Size of the archive itself. */
  bytes: number;
  /** Files stored (directories are implied by the files' paths). */
  entries: number;
  /** Paths (relative to the folder) that were not archived because they are not regular files. */
  skipped: string[];
}

export interface ExtractLimits {
  maxEntries?: number;
  /** Total uncompressed bytes of all entries. */
  maxBytes?: number;
}

export interface ExtractResult {
  entries: number;
  /** Uncompressed bytes written. */
  bytes: number;
}

export const defaultExtractLimits: Readonly<Required<ExtractLimits>> = Object.freeze({
  maxEntries: 10_000,
  maxBytes: 512 * 1024 * 1024,
});

// Every entry gets the same timestamp, so the same content gives the same archive bytes and
// thus the same sha256: a rebuilt archive that did not change does not look like a new one.
// 1980-01-01 is the earliest date the zip format's DOS timestamps can express.
const fixedEntryDate = new Date('1980-01-01T00:00:00.000Z');

const fileTypeMask = 0o170000;
const symlinkType = 0o120000;
const directoryType = 0o040000;

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

/**
 * Zips every regular file under `folder` into `target`. The archive is written to a temp file
 * beside `target`, fsynced and renamed over it, so a reader (the agent serving downloads) sees
 * the previous archive or the new one, never a half-written one.
 */
export async function zipFolder(folder: string, target: string): Promise<ZipResult> {
  const source = path.resolve(folder);
  const file = path.resolve(target);
  let info;
  try {
    info = await stat(source);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
      throw new ClusterGuardError('InvalidInput', `cannot zip ${source}: it does not exist`);
    }
    throw err;
  }
  if (!info.isDirectory()) {
    throw new ClusterGuardError('InvalidInput', `cannot zip ${source}: it is not a directory`);
  }
  if (isInside(file, source)) {
    // The walk would find the archive being written (or its temp file) and zip it into itself.
    throw new ClusterGuardError(
      'InvalidInput',
      `cannot zip ${source} into ${file}: the archive must be outside the folder`,
    );
  }
  const { files, skipped } = await regularFiles(source);

  await mkdir(path.dirname(file), { recursive: true });
  const temp = tempBeside(file, '.tmp');
  const hash = createHash('sha256');
  const archive = new ZipArchive({ zlib: { level: 9 } });
  try {
    const written = pipeline(archive, hashing(hash), createWriteStream(temp, { flags: 'wx' }));
    // Awaited below; until then a failure must not surface as an unhandled rejection.
    written.catch(() => undefined);
    // A file that vanishes between the walk and the read is a warning to archiver; here it
    // would mean an archive that silently lacks a file, so it fails the whole run.
    archive.on('warning', (err) => archive.destroy(err));
    for (const rel of files) {
      const full = path.join(source, ...rel.split('/'));
      const stats = await lstat(full);
      if (!stats.isFile()) {
        // Replaced by a link or a folder since the walk: still never followed.
        skipped.push(rel);
        continue;
      }
      // Passing stats makes archiver queue entries in call order instead of after its own
      // concurrent stat() calls, which would make the order (and the bytes) vary.
      archive.file(full, { name: rel, date: fixedEntryDate, mode: stats.mode & 0o777, stats });
    }
    await Promise.all([archive.finalize(), written]);
    const handle = await open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    const { size } = await stat(temp);
    await rename(temp, file);
    await syncDirectory(path.dirname(file));
    return { file, sha256: hash.digest('hex'), bytes: size, entries: files.length, skipped };
  } catch (err) {
    archive.abort();
    await rm(temp, { force: true });
    throw err;
  }
}

class Refusal extends ClusterGuardError {
  constructor(archive: string, entry: string | undefined, reason: string) {
    super(
      'UnsafeArchive',
      entry === undefined
        ? `refusing archive ${archive}: ${reason}`
        : `refusing archive ${archive}: entry ${JSON.stringify(entry)} ${reason}`,
    );
  }
}

/** Why `name` may not be extracted, or undefined when it is a safe relative path. */
function unsafeName(name: string): string | undefined {
  if (name === '') return 'has an empty name';
  if (name.includes('\0')) return 'has a NUL character in its name';
  if (name.includes('\\')) return 'has a backslash in its name (a Windows path separator)';
  if (name.startsWith('/')) return 'is an absolute path';
  if (/^[a-zA-Z]:/.test(name)) return 'starts with a drive letter';
  if (name.split('/').includes('..')) return 'has a ".." segment (it would escape the folder)';
  return undefined;
}

/** `a/./b//c/` → `a/b/c`: the name that duplicate detection compares. */
function canonicalName(name: string): string {
  return name
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 in plain JavaScript; exported for its test only. */
export function tableCrc32(data: Buffer, value = 0): number {
  let c = ~value >>> 0;
  for (const byte of data) c = (crcTable[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return ~c >>> 0;
}

/** zlib.crc32 exists from Node 20.15 on; the engines field allows 20.3. */
const crc32: (data: Buffer, value: number) => number =
  typeof zlib.crc32 === 'function' ? (data, value) => zlib.crc32(data, value) : tableCrc32;

/**
 * Counts what is actually inflated, whatever the headers claim, and stops past the limit; and
 * checks the entry's CRC-32, which yauzl leaves to its caller.
 */
function checkedData(
  entry: Entry,
  limit: number,
  total: { bytes: number },
  refuse: (reason: string) => Error,
): Transform {
  let crc = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      total.bytes += chunk.length;
      if (total.bytes > limit) {
        callback(refuse(`inflates past the limit of ${limit} bytes in total (a zip bomb?)`));
        return;
      }
      crc = crc32(chunk, crc);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (crc !== entry.crc32) callback(refuse('fails its CRC-32 check: the archive is corrupt'));
      else callback();
    },
  });
}

/** Errors of the local file system (disk full, permissions): not the archive's fault. */
function isFileSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

async function openZip(file: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(file, {
      lazyEntries: true,
      autoClose: false,
      // Names are decoded and checked here, not by yauzl, so that a refusal names the archive
      // and the entry, and backslashes are refused rather than silently turned into slashes.
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new ClusterGuardError('InvalidInput', `archive ${file} does not exist`);
    }
    if (isFileSystemError(err)) throw err;
    throw new Refusal(
      file,
      undefined,
      `it is not a zip archive, or it is truncated (${(err as Error).message})`,
    );
  }
}

function entryMode(entry: Entry): number {
  const unix = entry.externalFileAttributes >>> 16;
  // Permission bits only (no setuid, setgid, sticky); 0600 key files must stay 0600.
  const perms = unix & 0o777;
  return perms === 0 ? 0o644 : perms;
}

/**
 * Unpacks `file` into `dest`, refusing anything that could write outside `dest` or exhaust
 * the disk. Everything is extracted into a fresh temp directory beside `dest` first, and `dest`
 * is replaced only when the whole archive was good: a refused or corrupt archive leaves `dest`
 * as it was and nothing else behind.
 */
export async function extractZip(
  file: string,
  dest: string,
  limits: ExtractLimits = {},
): Promise<ExtractResult> {
  const archive = path.resolve(file);
  const target = path.resolve(dest);
  const maxEntries = limits.maxEntries ?? defaultExtractLimits.maxEntries;
  const maxBytes = limits.maxBytes ?? defaultExtractLimits.maxBytes;

  const zip = await openZip(archive);
  let work: string | undefined;
  try {
    if (zip.entryCount > maxEntries) {
      throw new Refusal(
        archive,
        undefined,
        `it has ${zip.entryCount} entries, more than the limit of ${maxEntries}`,
      );
    }
    await mkdir(path.dirname(target), { recursive: true });
    work = await mkdtemp(path.join(path.dirname(target), `.${path.basename(target)}.extract-`));
    const root = work;
    const seen = new Set<string>();
    let entries = 0;
    const total = { bytes: 0 };

    for await (const entry of zip.eachEntry()) {
      const name = yauzl.getFileNameLowLevel(
        entry.generalPurposeBitFlag,
        entry.fileNameRaw,
        entry.extraFields,
        true,
      );
      const refuse = (reason: string) => new Refusal(archive, name, reason);
      entries += 1;
      // yauzl reads exactly the count checked above; counting again costs nothing and keeps
      // the limit true should that ever change.
      if (entries > maxEntries) throw refuse(`is past the limit of ${maxEntries} entries`);
      const bad = unsafeName(name);
      if (bad) throw refuse(bad);
      const type = (entry.externalFileAttributes >>> 16) & fileTypeMask;
      if (type === symlinkType) throw refuse('is a symbolic link');
      if (entry.isEncrypted()) throw refuse('is encrypted');
      const canonical = canonicalName(name);
      if (canonical === '') throw refuse('names the archive root itself');
      if (seen.has(canonical)) throw refuse('is a duplicate of an earlier entry');
      seen.add(canonical);
      const out = path.join(root, ...canonical.split('/'));
      if (!isInside(out, root) || out === root) throw refuse('resolves outside the folder');

      const isDirectory = name.endsWith('/') || type === directoryType;
      try {
        if (isDirectory) {
          await mkdir(out, { recursive: true });
          continue;
        }
        if (total.bytes + entry.uncompressedSize > maxBytes) {
          throw refuse(
            `would take the total past the limit of ${maxBytes} bytes ` +
              `(it declares ${entry.uncompressedSize})`,
          );
        }
        await mkdir(path.dirname(out), { recursive: true });
        let stream;
        try {
          stream = await zip.openReadStreamPromise(entry);
        } catch (err) {
          throw refuse(`cannot be read: ${(err as Error).message}`);
        }
        await pipeline(
          stream,
          checkedData(entry, maxBytes, total, refuse),
          // 'wx': never write through anything already at that path.
          createWriteStream(out, { flags: 'wx', mode: entryMode(entry) }),
        );
      } catch (err) {
        if (err instanceof ClusterGuardError) throw err;
        if (isErrno(err, 'EEXIST', 'ENOTDIR', 'EISDIR')) {
          throw refuse('conflicts with an earlier entry (a file and a folder of the same name)');
        }
        if (isFileSystemError(err)) throw err;
        throw refuse(`is corrupt: ${(err as Error).message}`);
      }
    }

    // mkdtemp makes the folder 0700; the extracted tree should look like any other folder.
    await chmod(root, 0o755);
    await replaceFolderWith(root, target);
    work = undefined;
    return { entries, bytes: total.bytes };
  } catch (err) {
    // eachEntry reports a corrupt central directory as a plain error.
    if (err instanceof ClusterGuardError || isFileSystemError(err)) throw err;
    throw new Refusal(archive, undefined, `it is corrupt: ${(err as Error).message}`);
  } finally {
    zip.close();
    if (work) await rm(work, { recursive: true, force: true });
  }
}

/**
 * Puts `source` at `target`. The old target is first moved aside rather than deleted, so that
 * if the second rename fails it can be put back.
 */
async function replaceFolderWith(source: string, target: string): Promise<void> {
  const aside = tempBeside(target, '.old');
  let movedAside = false;
  try {
    await rename(target, aside);
    movedAside = true;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  try {
    await rename(source, target);
  } catch (err) {
    if (movedAside) await rename(aside, target).catch(() => undefined);
    throw err;
  }
  if (movedAside) await rm(aside, { recursive: true, force: true });
  await syncDirectory(path.dirname(target));
}
