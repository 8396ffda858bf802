import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256Pattern, type BundleMeta, type InstalledBundle } from '../contracts/bundles.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { readJarIdentity } from './manifest.js';

export async function sha256OfFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Writes `text` to `target` through a synced temp file and a rename: never half a file. */
export async function writeFileAtomically(target: string, text: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const temp = `${target}.${randomUUID().slice(0, 8)}.tmp`;
  const fh = await open(temp, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, target);
}

function checkedSha(sha256: string): string {
  if (!sha256Pattern.test(sha256)) {
    throw new ClusterGuardError('InvalidInput', `"${sha256}" is not a sha256 in hex`);
  }
  return sha256;
}

/**
 * Every bundle an agent has seen, content-addressed: `<sha256>.jar` and its metadata
 * `<sha256>.json`. Versions are never replaced, so every version stays available (docs/design.md)
 * and a rollback always finds the jar it restores.
 */
export class BundleStore {
  constructor(readonly folder: string) {}

  jarPath(sha256: string): string {
    return path.join(this.folder, `${checkedSha(sha256)}.jar`);
  }
  private metaPath(sha256: string): string {
    return path.join(this.folder, `${checkedSha(sha256)}.json`);
  }

  /** A temp file name inside the store, on its file system, for an upload or a fetch. */
  async tempFile(): Promise<string> {
    await mkdir(this.folder, { recursive: true });
    return path.join(this.folder, `.incoming-${randomUUID()}.tmp`);
  }

  async get(sha256: string): Promise<BundleMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(this.metaPath(sha256), 'utf8')) as BundleMeta;
      await stat(this.jarPath(sha256));
      return meta;
    } catch (err) {
      if (err instanceof ClusterGuardError) throw err;
      return undefined;
    }
  }

  async list(): Promise<BundleMeta[]> {
    let names: string[];
    try {
      names = await readdir(this.folder);
    } catch {
      return [];
    }
    const metas = await Promise.all(
      names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n)).map((n) => this.get(n.slice(0, 64))),
    );
    return metas
      .filter((m): m is BundleMeta => m !== undefined)
      .sort((a, b) =>
        a.symbolicName === b.symbolicName
          ? a.storedAt.localeCompare(b.storedAt)
          : a.symbolicName.localeCompare(b.symbolicName),
      );
  }

  /**
   * Takes `temp` (a file inside the store folder) into the store: hashed, its identity read
   * from its manifest, renamed to `<sha256>.jar`. A refused file is deleted: nothing is kept.
   * `expectedSha256` refuses a file whose content is not that one.
   */
  async adopt(
    temp: string,
    options: { fileName?: string; expectedSha256?: string; now?: Date } = {},
  ): Promise<BundleMeta & { fresh: boolean }> {
    try {
      const { sha256, bytes } = await sha256OfFile(temp);
      if (options.expectedSha256 !== undefined && sha256 !== options.expectedSha256) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `the artifact has sha256 ${sha256}, not the expected ${options.expectedSha256}`,
        );
      }
      const existing = await this.get(sha256);
      if (existing) return { ...existing, fresh: false };
      const identity = await readJarIdentity(temp);
      const meta: BundleMeta = {
        ...identity,
        sha256,
        bytes,
        storedAt: (options.now ?? new Date()).toISOString(),
        ...(options.fileName ? { fileName: options.fileName.slice(0, 255) } : {}),
      };
      // The jar first: metadata without its jar would make `get` claim a bundle it cannot serve.
      await rename(temp, this.jarPath(sha256));
      await writeFileAtomically(this.metaPath(sha256), `${JSON.stringify(meta, null, 2)}\n`);
      return { ...meta, fresh: true };
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * Leftovers of uploads or fetches that a crash interrupted: temp files older than `before`
   * (the start of this process), so that one running now is never touched.
   */
  async removeTempFiles(before: number): Promise<void> {
    await removeOlderThan(this.folder, before, (n) => n.startsWith('.incoming-'));
  }
}

/** Removes the entries of `folder` that `match` and were last modified before `before`. */
export async function removeOlderThan(
  folder: string,
  before: number,
  match: (name: string) => boolean = () => true,
): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(folder);
  } catch {
    return;
  }
  await Promise.all(
    names.filter(match).map(async (n) => {
      const file = path.join(folder, n);
      const info = await stat(file).catch(() => undefined);
      if (info && info.mtimeMs < before) await rm(file, { recursive: true, force: true });
    }),
  );
}

export interface InstalledState {
  bundles: Record<string, InstalledBundle>;
}

/**
 * `installed.json`: which version of each bundle this node runs, by whom, and what ran before.
 * Changes are serialised in this process and written atomically.
 */
export class InstalledStateFile {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  async read(): Promise<InstalledState> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as InstalledState;
      return { bundles: parsed.bundles ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bundles: {} };
      throw new ClusterGuardError(
        'InvalidConfig',
        `${this.file} cannot be read (${(err as Error).message}): repair or remove it; the ` +
          'deploy folder itself is untouched',
      );
    }
  }

  /** Applies `change` to the state and writes it; `change` returns the new entry or null. */
  update(
    symbolicName: string,
    change: (current: InstalledBundle | undefined) => InstalledBundle | null,
  ): Promise<InstalledState> {
    const run = this.chain.then(async () => {
      const state = await this.read();
      const next = change(state.bundles[symbolicName]);
      if (next) state.bundles[symbolicName] = next;
      else delete state.bundles[symbolicName];
      await writeFileAtomically(this.file, `${JSON.stringify(state, null, 2)}\n`);
      return state;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
