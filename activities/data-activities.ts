import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import {
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { maxManifestBytes, readArchiveManifest, readZipEntry } from '../src/archive/manifest.js';
import { extractZip, zipFolder } from '../src/archive/zip.js';
import type { MiddlewareName, NodeLayout } from '../src/config/layout.js';
import {
  archiveKinds,
  archiveManifestFile,
  archiveManifestFormat,
  archiveManifestSchema,
  compareBackupIds,
  compareManifest,
  dataComponents,
  isBackupId,
  manifestCommonSchema,
  planRetention,
  type ArchiveKind,
  type ArchiveManifest,
  type DataArchive,
  type DataComponentName,
  type ManifestCommon,
  type ManifestFile,
  type ManifestSummary,
  type PrunedArchive,
} from '../src/contracts/data-runbooks.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { RestoreTestResult } from '../src/contracts/data-runbooks.js';
import { readKafkaDump } from '../src/middleware/kafka.js';
import { readZooKeeperDump } from '../src/middleware/zookeeper.js';
import type { MiddlewareBinary } from '../src/contracts/ping.js';
import { describeZodError } from '../src/contracts/validation.js';
import type { Logger } from '../src/logger.js';
import { toApplicationFailure } from './failures.js';

export interface DataActivityDeps {
  /** This node. */
  address: string;
  layout: NodeLayout;
  logger: Logger;
  /** What this node can back up (its agent's configuration); `dataSources` reports it. */
  sources?: { enabled: readonly MiddlewareName[]; controllerDataFolders: readonly string[] };
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

const heartbeatEveryMs = 2000;
const defaultLimits = { maxEntries: 1_000_000, maxBytes: 1024 ** 4 };
const defaultStaleAfterMs = 6 * 3600 * 1000;
/** Scratch folders beside the archives: same file system, so unpacking is a rename. */
const scratchPrefix = '.scratch-';

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/** Regular files under `folder` (forward-slash paths, code-unit order); links are skipped. */
async function regularFiles(folder: string): Promise<{ files: string[]; skipped: string[] }> {
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

/** Keeps an activity's heartbeat going while long file work runs, with what it is doing now. */
function heartbeating(initial: string) {
  const ctx = Context.current();
  let detail = initial;
  const timer = setInterval(() => ctx.heartbeat({ detail }), heartbeatEveryMs);
  return {
    signal: ctx.cancellationSignal,
    set(next: string) {
      detail = next;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

async function sha256File(
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

async function hashFiles(
  folder: string,
  rels: readonly string[],
  beat: ReturnType<typeof heartbeating>,
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

function summary(manifest: ArchiveManifest): ManifestSummary {
  const out: ManifestSummary & { files?: unknown } = { ...manifest };
  delete out.files;
  return out;
}

/** Creates the data activities of one node agent: archives of its data operations. */
export function createDataActivities(deps: DataActivityDeps) {
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
    beat: ReturnType<typeof heartbeating>,
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
      const problems = compareManifest(declared.files, actual);
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

  /** Runs an activity body with a heartbeat, converting ClusterGuardErrors for Temporal. */
  async function activity<T>(
    where: string,
    body: (beat: ReturnType<typeof heartbeating>) => Promise<T>,
  ): Promise<T> {
    const beat = heartbeating(where);
    try {
      return await body(beat);
    } catch (err) {
      logger.warn('data activity failed', { where, error: (err as Error).message });
      throw toApplicationFailure(err, where);
    } finally {
      beat.stop();
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
    /** What this node can back up: its enabled middleware, and the controller when configured. */
    dataSources(): Promise<{ node: string; enabled: MiddlewareName[]; controller: boolean }> {
      return Promise.resolve({
        node: self,
        enabled: [...(deps.sources?.enabled ?? [])],
        controller: (deps.sources?.controllerDataFolders.length ?? 0) > 0,
      });
    },

    /**
     * Writes `<op>-data/manifest.json` (every file of the components' working folders with its
     * size and sha256, plus the runbook's fields) and zips `<op>-data/` into
     * `<op>-data-archive/<backupId>.zip`, atomically. A retry of the same run rebuilds it; an
     * archive of another run under the same id is never replaced.
     */
    async archiveData(input: ArchiveDataInput): Promise<DataArchive> {
      return activity(
        `archiveData of ${input.op} ${input.backupId} on node ${self}`,
        async (beat) => {
          if (input.op !== 'backup' && input.op !== 'export') {
            throw new ClusterGuardError(
              'InvalidInput',
              `archiveData writes backup or export archives, not ${String(input.op)}`,
            );
          }
          const op = input.op;
          const components = checkComponents(input.components);
          const common = manifestCommonSchema.safeParse(input.manifest);
          if (!common.success) {
            throw new ClusterGuardError(
              'InvalidInput',
              `manifest: ${describeZodError(common.error)}`,
            );
          }
          const target = archivePath(op, input.backupId);
          const root = dataRoot(op);

          const existing = await stat(target).then(
            () => true,
            () => false,
          );
          if (existing) {
            let owner = 'an unreadable archive';
            let same = false;
            try {
              const text = await readZipEntry(target, archiveManifestFile, maxManifestBytes);
              const m = text
                ? archiveManifestSchema.parse(JSON.parse(text.toString('utf8')))
                : undefined;
              if (m) {
                same = m.workflowId === common.data.workflowId && m.runId === common.data.runId;
                owner = `${m.workflowId} run ${m.runId}`;
              }
            } catch {
              // Unreadable: not ours to replace either.
            }
            if (!same) {
              throw new ClusterGuardError(
                'InvalidInput',
                `${named(target)} already exists, written by ${owner}: a backup id names one backup. ` +
                  'Start the runbook again a second later, or with another label',
              );
            }
          }

          // `<op>-data/` holds every component's working folder; only this run's go in.
          await mkdir(root, { recursive: true });
          for (const entry of await readdir(root, { withFileTypes: true })) {
            if ((components as string[]).includes(entry.name) && entry.isDirectory()) continue;
            const full = path.join(root, entry.name);
            if ((dataComponents as readonly string[]).includes(entry.name) && entry.isDirectory()) {
              // Another component's leftovers from an earlier run: emptied, the folder kept.
              for (const inner of await readdir(full)) {
                await rm(path.join(full, inner), { recursive: true, force: true });
              }
            } else {
              await rm(full, { recursive: true, force: true });
            }
          }
          for (const c of components) {
            const folder = layout.workingFolder(op, c);
            const listed = await regularFiles(folder);
            if (listed.files.length === 0) {
              throw new ClusterGuardError(
                'InvalidInput',
                `${folder} on node ${self} is empty: ${op}Data of ${c} has not run (or wrote nothing)`,
              );
            }
          }

          const { files, skipped } = await regularFiles(root);
          if (skipped.length) {
            logger.warn(`${op} ${input.backupId}: entries that are not files are left out`, {
              skipped,
            });
          }
          const hashed = await hashFiles(root, files, beat);

          const versions: Record<string, string> = { ...(common.data.versions ?? {}) };
          if (deps.probeVersions) {
            try {
              for (const b of await deps.probeVersions(beat.signal)) {
                if (b.found && b.version && components.includes(b.name as DataComponentName)) {
                  versions[b.name] ??= b.version;
                }
              }
            } catch (err) {
              logger.warn('middleware versions not probed', { error: (err as Error).message });
            }
          }
          const manifest: ArchiveManifest = {
            format: archiveManifestFormat,
            op,
            backupId: input.backupId,
            node: self,
            components,
            ...common.data,
            ...(Object.keys(versions).length ? { versions } : {}),
            files: hashed,
            skipped,
          };
          await writeFile(
            path.join(root, archiveManifestFile),
            `${JSON.stringify(manifest, null, 1)}\n`,
          );
          beat.set(`zipping ${root}`);
          const zipped = await zipFolder(root, target);
          logger.info(`${op} archive written`, {
            file: zipped.file,
            bytes: zipped.bytes,
            entries: zipped.entries,
            components,
          });
          return {
            node: self,
            file: zipped.file,
            bytes: zipped.bytes,
            sha256: zipped.sha256,
            entries: zipped.entries,
          };
        },
      );
    },

    /**
     * Checks `<op>-data-archive/<backupId>.zip`: its sha256 when given, then every file
     * against its manifest (nothing missing, nothing extra, sizes and hashes equal), extracted
     * into a scratch folder that is removed afterwards. Read-only for the archive.
     */
    async verifyArchive(input: VerifyArchiveInput): Promise<VerifiedArchive> {
      return activity(
        `verifyArchive of ${input.op} ${input.backupId} on node ${self}`,
        async (beat) => {
          const { verified } = await openVerified(input, beat, () => Promise.resolve(undefined));
          logger.info('archive verified', { file: verified.file, files: verified.files });
          return verified;
        },
      );
    },

    /**
     * Verifies the archive, then puts each component's folder from it into
     * `<op>-data/<component>/`, replacing what was there: what `restoreData` / `importData`
     * read. Nothing is replaced unless the whole archive verified.
     */
    async unpackArchive(input: UnpackArchiveInput): Promise<UnpackedArchive> {
      return activity(
        `unpackArchive of ${input.backupId} into ${input.op}-data on node ${self}`,
        async (beat) => {
          if (input.op !== 'restore' && input.op !== 'import') {
            throw new ClusterGuardError(
              'InvalidInput',
              `unpackArchive fills restore-data or import-data, not ${String(input.op)}-data`,
            );
          }
          const op = input.op;
          const from = input.from ?? (op === 'restore' ? 'backup' : 'import');
          const components = checkComponents(input.components);
          const { verified, used } = await openVerified(
            {
              op: from,
              backupId: input.backupId,
              ...(input.sha256 ? { sha256: input.sha256 } : {}),
            },
            beat,
            async (content, manifest) => {
              const absent = components.filter((c) => !manifest.components.includes(c));
              if (absent.length) {
                throw new ClusterGuardError(
                  'InvalidInput',
                  `${named(archivePath(from, input.backupId))} holds no ${absent.join(', ')} data (it holds ${manifest.components.join(', ')})`,
                );
              }
              const out: UnpackedArchive['components'] = [];
              for (const c of components) {
                const source = path.join(content, c);
                const target = layout.workingFolder(op, c);
                // A component that wrote no files has no folder in the zip.
                await mkdir(source, { recursive: true });
                await rm(target, { recursive: true, force: true });
                await mkdir(path.dirname(target), { recursive: true });
                try {
                  await rename(source, target);
                } catch (err) {
                  if (!isErrno(err, 'EXDEV')) throw err;
                  await cp(source, target, { recursive: true });
                }
                const prefix = `${c}/`;
                const files = manifest.files.filter((f) => f.path.startsWith(prefix));
                out.push({
                  component: c,
                  folder: target,
                  files: files.length,
                  bytes: files.reduce((n, f) => n + f.bytes, 0),
                });
              }
              return out;
            },
          );
          logger.info('archive unpacked', { file: verified.file, into: `${op}-data`, components });
          return { node: self, file: verified.file, sha256: verified.sha256, components: used };
        },
      );
    },

    /**
     * A restore test: verifies the archive like verifyArchive, then reads each component's
     * dump from the scratch copy the way restoreData would (every znode, every Kafka message
     * line against the topic's count) without touching live data or the working folders.
     * A dump that would not restore is an UnsafeArchive naming the component.
     */
    async restoreTest(input: VerifyArchiveInput): Promise<RestoreTestResult> {
      return activity(`restoreTest of ${input.backupId} on node ${self}`, async (beat) => {
        const { used } = await openVerified(input, beat, async (content, manifest) => {
          const out: RestoreTestResult['components'] = [];
          for (const component of manifest.components) {
            const folder = path.join(content, component);
            beat.set(`reading the ${component} dump of ${input.backupId}`);
            try {
              if (component === 'zookeeper') {
                const r = await readZooKeeperDump(folder);
                out.push({
                  component,
                  items: r.znodes,
                  detail: `${r.znodes} znodes, ${r.bytes} bytes of data`,
                });
              } else if (component === 'kafka') {
                const r = await readKafkaDump(folder, beat.signal);
                out.push({
                  component,
                  items: r.messages,
                  detail: `${r.messages} messages in ${r.topics} topics`,
                });
              } else {
                // CockroachDB's BACKUP and the controller's folders are files the restore puts
                // back as they are: verified against the manifest above, nothing more to read.
                const files = manifest.files.filter((f) => f.path.startsWith(`${component}/`));
                out.push({ component, items: files.length, detail: `${files.length} files` });
              }
            } catch (err) {
              if (!(err instanceof ClusterGuardError)) throw err;
              throw new ClusterGuardError(
                'UnsafeArchive',
                `${named(archivePath(checkKind(input.op), input.backupId))} would not restore ${component}: ${err.message}`,
              );
            }
          }
          return out;
        });
        logger.info('restore test passed', { backupId: input.backupId, components: used });
        return { node: self, components: used };
      });
    },

    /** The archives of `<op>-data-archive/`, newest first. */
    async listArchives(input: {
      op: ArchiveKind;
    }): Promise<{ node: string; archives: ListedArchive[] }> {
      return activity(`listArchives of ${input.op} on node ${self}`, async () => ({
        node: self,
        archives: await listArchivesIn(checkKind(input.op)),
      }));
    },

    /**
     * Retention: deletes all but the newest `keep` archives of `<op>-data-archive/`, never a
     * protected one; also sweeps temp archives and scratch folders that an interrupted run
     * left (older than a few hours, so never one in use).
     */
    async pruneArchives(input: PruneArchivesInput): Promise<PruneArchivesResult> {
      return activity(`pruneArchives of ${input.op} on node ${self}`, async () => {
        const op = checkKind(input.op);
        const { keep, maxAgeDays } = input;
        if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) {
          throw new ClusterGuardError('InvalidInput', `keep must be an integer ≥ 1, not ${keep}`);
        }
        if (maxAgeDays !== undefined && !(maxAgeDays > 0)) {
          throw new ClusterGuardError(
            'InvalidInput',
            `maxAgeDays must be a positive number, not ${maxAgeDays}`,
          );
        }
        const now = input.now ? new Date(input.now) : new Date();
        if (Number.isNaN(now.getTime())) {
          throw new ClusterGuardError(
            'InvalidInput',
            `now must be an ISO-8601 time, not ${input.now}`,
          );
        }
        const listed = await listArchivesIn(op);
        const plan = planRetention(
          listed.map((a) => a.backupId),
          keep,
          input.protect,
          maxAgeDays === undefined ? undefined : { maxAgeDays, now },
        );
        const deleted: PrunedArchive[] = [];
        for (const a of listed.filter((x) => plan.remove.includes(x.backupId))) {
          await rm(a.file, { force: true });
          deleted.push({ node: self, backupId: a.backupId, file: a.file, bytes: a.bytes });
        }
        const swept: string[] = [];
        const folder = layout.archiveFolder(op);
        const staleBefore = Date.now() - (deps.staleAfterMs ?? defaultStaleAfterMs);
        for (const name of await readdir(folder).catch(() => [] as string[])) {
          if (!name.startsWith('.')) continue;
          const full = path.join(folder, name);
          const info = await stat(full).catch(() => undefined);
          if (info && info.mtimeMs < staleBefore) {
            await rm(full, { recursive: true, force: true });
            swept.push(full);
          }
        }
        if (deleted.length || swept.length) {
          logger.info(`${op} archives pruned`, {
            deleted: deleted.map((d) => d.backupId),
            swept,
          });
        }
        return { node: self, deleted, kept: plan.keep, swept };
      });
    },
  };
}

export type DataActivities = ReturnType<typeof createDataActivities>;
