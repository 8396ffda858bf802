import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { readArchiveManifest } from '../src/archive/manifest.js';
import { extractZip } from '../src/archive/zip.js';
import { bundleSetProblems } from '../src/bundles/backup.js';
import type { MiddlewareName, NodeLayout } from '../src/config/layout.js';
import {
  archiveKinds,
  archiveManifestFile,
  compareBackupIds,
  compareManifest,
  dataComponents,
  isBackupId,
  type ArchiveKind,
  type ArchiveManifest,
  type DataArchive,
  type DataComponentName,
  type ManifestCommon,
  type ManifestSummary,
  type PrunedArchive,
} from '../src/contracts/data-runbooks.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { MiddlewareBinary } from '../src/contracts/ping.js';
import type { Logger } from '../src/logger.js';
import {
  hashFiles,
  isErrno,
  regularFiles,
  sha256File,
  summary,
  type Progress,
} from './archive-files.js';
import { describeActivity, keepHeartbeating } from './interceptor.js';

export interface DataActivityDeps {
  /** This node. */
  address: string;
  layout: NodeLayout;
  logger: Logger;
  /** What this node can back up (its agent's configuration); `dataSources` reports it. */
  sources?: {
    enabled: readonly MiddlewareName[];
    controllerDataFolders: readonly string[];
    /** Whether this node keeps the application's bundle set (src/bundles/backup.ts). */
    bundles?: () => Promise<boolean>;
  };
  /** Middleware versions for the manifest; the agent probes its own binaries. */
  probeVersions?: (signal: AbortSignal) => Promise<MiddlewareBinary[]>;
  /**
   * The most a manifest may declare. Extraction is bounded by what the manifest declares, so
   * these only cap a manifest that declares absurd sizes.
   */
  limits?: { maxEntries?: number; maxBytes?: number };
  /** Leftovers of an interrupted run older than this are swept by pruneArchives. */
  staleAfterMs?: number;
}

/** Archives are written only for the operations that produce data. */
export type ArchiveOp = 'backup' | 'export';

export interface ArchiveDataInput {
  op: ArchiveOp;
  backupId: string;
  /** The components whose working folders `<op>-data/<component>/` go into the archive. */
  components: DataComponentName[];
  manifest: ManifestCommon;
}

export interface VerifyArchiveInput {
  op: ArchiveKind;
  backupId: string;
  /** The whole archive's sha256 as it was written; any other is refused. */
  sha256?: string;
}

export interface VerifiedArchive extends DataArchive {
  op: ArchiveKind;
  backupId: string;
  /** Files listed in the manifest and found intact. */
  files: number;
  /** Their total size, uncompressed. */
  dataBytes: number;
  manifest: ManifestSummary;
}

export interface UnpackArchiveInput {
  /** Whose working folders receive the data: `<op>-data/<component>/`. */
  op: 'restore' | 'import';
  /** The archive folder to read from; default `backup` for a restore, `import` for an import. */
  from?: ArchiveKind;
  backupId: string;
  components: DataComponentName[];
  sha256?: string;
}

export interface UnpackedArchive {
  node: string;
  file: string;
  sha256: string;
  components: { component: DataComponentName; folder: string; files: number; bytes: number }[];
}

export interface ListedArchive {
  backupId: string;
  file: string;
  bytes: number;
  modifiedAt: string;
}

export interface PruneArchivesInput {
  op: ArchiveKind;
  /** Keep the newest N. */
  keep?: number;
  /** Delete those older than this many days, measured from `now` (the runbook's clock). */
  maxAgeDays?: number;
  now?: string;
  /** Backup ids never deleted (the runbook's newest verified backup). */
  protect: string[];
}

export interface PruneArchivesResult {
  node: string;
  deleted: PrunedArchive[];
  kept: string[];
  /** Leftovers of interrupted runs that were removed (temp archives, scratch folders). */
  swept: string[];
}

const defaultLimits = { maxEntries: 1_000_000, maxBytes: 1024 ** 4 };
export const defaultStaleAfterMs = 6 * 3600 * 1000;
/** Scratch folders beside the archives: same file system, so unpacking is a rename. */
const scratchPrefix = '.scratch-';

/** What every data activity of one node shares: checks of its input, paths, verification. */
export function createArchiveContext(deps: DataActivityDeps) {
  const self = deps.address;
  const { layout, logger } = deps;
  const caps = { ...defaultLimits, ...deps.limits };

  const checkId = (backupId: string): string => {
    if (typeof backupId !== 'string' || !isBackupId(backupId)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `"${String(backupId)}" is not a backup id (e.g. 20261122T074512Z or 20261122T074512Z-nightly)`,
      );
    }
    return backupId;
  };
  const checkKind = (op: string): ArchiveKind => {
    if (!(archiveKinds as readonly string[]).includes(op)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `"${op}" is not one of ${archiveKinds.join(', ')}`,
      );
    }
    return op as ArchiveKind;
  };
  const checkComponents = (components: readonly string[]): DataComponentName[] => {
    const bad = components.filter((c) => !(dataComponents as readonly string[]).includes(c));
    if (bad.length || components.length === 0) {
      throw new ClusterGuardError(
        'InvalidInput',
        `components must be some of ${dataComponents.join(', ')}; got [${components.join(', ')}]`,
      );
    }
    return dataComponents.filter((c) => components.includes(c));
  };
  const archivePath = (op: ArchiveKind, backupId: string) =>
    path.join(layout.archiveFolder(op), `${checkId(backupId)}.zip`);
  const dataRoot = (op: ArchiveOp) => path.join(layout.root, `${op}-data`);
  const named = (file: string) => `archive ${file} on node ${self}`;

  /**
   * Verifies `<kind>-data-archive/<backupId>.zip` by extracting it into a scratch folder and
   * checking every file against the manifest; `use` may take folders out of the scratch folder
   * before it is removed.
   */
  async function openVerified<T>(
    input: VerifyArchiveInput,
    beat: Progress,
    use: (content: string, manifest: ArchiveManifest) => Promise<T>,
  ): Promise<{ verified: VerifiedArchive; used: T }> {
    const op = checkKind(input.op);
    const file = archivePath(op, input.backupId);
    const where = named(file);
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
      throw new ClusterGuardError(
        'InvalidInput',
        `node ${self} has no archive of backup ${input.backupId}: ${file} does not exist`,
      );
    }
    if (!info.isFile()) throw new ClusterGuardError('UnsafeArchive', `${where} is not a file`);

    beat.set(`hashing ${file}`);
    const whole = await sha256File(file, beat.signal);
    if (input.sha256 && whole.sha256 !== input.sha256) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `${where} has sha256 ${whole.sha256}, but it was written with ${input.sha256}: it changed since`,
      );
    }

    const { manifest: declared, text } = await readArchiveManifest(file, where);
    if (declared.backupId !== input.backupId) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `${where}: its manifest names backup ${declared.backupId}, not ${input.backupId} (renamed?)`,
      );
    }
    const declaredBytes = declared.files.reduce((n, f) => n + f.bytes, 0) + text.length;
    if (declared.files.length + 1 > caps.maxEntries || declaredBytes > caps.maxBytes) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `${where}: its manifest declares ${declared.files.length} files and ${declaredBytes} bytes, ` +
          `over this agent's limits (${caps.maxEntries} entries, ${caps.maxBytes} bytes)`,
      );
    }

    const folder = layout.archiveFolder(op);
    const scratch = await mkdtemp(path.join(folder, scratchPrefix));
    try {
      const content = path.join(scratch, 'content');
      beat.set(`extracting ${file}`);
      // Bounded by what the manifest declares, with room for a few extra or grown files so
      // that the comparison below can name them; a bomb is still refused long before the disk.
      await extractZip(file, content, {
        maxEntries: Math.min(caps.maxEntries, 2 * (declared.files.length + 1) + 16),
        maxBytes: Math.min(caps.maxBytes, 2 * declaredBytes + 16 * 1024 * 1024),
      });
      const extracted = await readFile(path.join(content, archiveManifestFile));
      if (!extracted.equals(text)) {
        throw new ClusterGuardError('UnsafeArchive', `${where}: its manifest changed while read`);
      }
      const { files, skipped } = await regularFiles(content);
      if (skipped.length) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `${where} holds entries that are not files: ${skipped.join(', ')}`,
        );
      }
      const actual = await hashFiles(
        content,
        files.filter((f) => f !== archiveManifestFile),
        beat,
      );
      // A bundle set is whole when each desired bundle's jar is there with its sha256: checked
      // first, so that the refusal names the bundle, not only a file of the archive.
      const problems = [
        ...(declared.components.includes('bundles')
          ? await bundleSetProblems(content, actual)
          : []),
        ...compareManifest(declared.files, actual),
      ];
      if (problems.length) {
        const shown = problems.slice(0, 10).join('; ');
        throw new ClusterGuardError(
          'UnsafeArchive',
          `${where} fails verification against its manifest: ${shown}` +
            (problems.length > 10 ? ` (and ${problems.length - 10} more)` : ''),
        );
      }
      const used = await use(content, declared);
      return {
        used,
        verified: {
          node: self,
          op,
          backupId: input.backupId,
          file,
          bytes: whole.bytes,
          sha256: whole.sha256,
          entries: declared.files.length + 1,
          files: declared.files.length,
          dataBytes: declaredBytes - text.length,
          manifest: summary(declared),
        },
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Runs an activity body that names itself `where` for its failures, with a heartbeat that
   * reports what it is doing now (`beat.set`).
   */
  async function activity<T>(where: string, body: (beat: Progress) => Promise<T>): Promise<T> {
    describeActivity(where);
    let detail = where;
    const beat: Progress = {
      signal: keepHeartbeating(() => ({ detail })),
      set: (next) => (detail = next),
    };
    try {
      return await body(beat);
    } catch (err) {
      logger.warn('data activity failed', { where, error: (err as Error).message });
      throw err;
    }
  }

  async function listArchivesIn(op: ArchiveKind): Promise<ListedArchive[]> {
    const folder = layout.archiveFolder(op);
    let names: Dirent[];
    try {
      names = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: ListedArchive[] = [];
    for (const entry of names) {
      const backupId = entry.name.endsWith('.zip') ? entry.name.slice(0, -4) : '';
      // Temp archives and scratch folders are hidden and never match a backup id.
      if (!entry.isFile() || !isBackupId(backupId)) continue;
      const file = path.join(folder, entry.name);
      const info = await stat(file).catch(() => undefined);
      if (!info) continue;
      out.push({ backupId, file, bytes: info.size, modifiedAt: info.mtime.toISOString() });
    }
    return out.sort((a, b) => compareBackupIds(a.backupId, b.backupId));
  }

  return {
    deps,
    self,
    layout,
    logger,
    checkKind,
    checkComponents,
    archivePath,
    dataRoot,
    named,
    openVerified,
    activity,
    listArchivesIn,
  };
}

export type ArchiveContext = ReturnType<typeof createArchiveContext>;
