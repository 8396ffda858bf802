import { cp, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreTestResult } from '../src/contracts/data-runbooks.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import { readBundleSet } from '../src/bundles/backup.js';
import { readKafkaDump } from '../src/middleware/kafka/index.js';
import { readZooKeeperDump } from '../src/middleware/zookeeper/index.js';
import { isErrno } from './archive-files.js';
import type {
  ArchiveContext,
  UnpackArchiveInput,
  UnpackedArchive,
  VerifiedArchive,
  VerifyArchiveInput,
} from './data-archives.js';

/** Reading archives: verification, unpacking into the working folders, restore tests. */
export function createArchiveReadActivities(archives: ArchiveContext) {
  return {
    /**
     * Checks `<op>-data-archive/<backupId>.zip`: its sha256 when given, then every file
     * against its manifest (nothing missing, nothing extra, sizes and hashes equal), extracted
     * into a scratch folder that is removed afterwards. Read-only for the archive.
     */
    async verifyArchive(input: VerifyArchiveInput): Promise<VerifiedArchive> {
      return archives.activity(
        `verifyArchive of ${input.op} ${input.backupId} on node ${archives.self}`,
        async (beat) => {
          const { verified } = await archives.openVerified(input, beat, () =>
            Promise.resolve(undefined),
          );
          archives.logger.info('archive verified', { file: verified.file, files: verified.files });
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
      return archives.activity(
        `unpackArchive of ${input.backupId} into ${input.op}-data on node ${archives.self}`,
        async (beat) => {
          if (input.op !== 'restore' && input.op !== 'import') {
            throw new ClusterGuardError(
              'InvalidInput',
              `unpackArchive fills restore-data or import-data, not ${String(input.op)}-data`,
            );
          }
          const op = input.op;
          const from = input.from ?? (op === 'restore' ? 'backup' : 'import');
          const components = archives.checkComponents(input.components);
          const { verified, used } = await archives.openVerified(
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
                  `${archives.named(archives.archivePath(from, input.backupId))} holds no ${absent.join(', ')} data (it holds ${manifest.components.join(', ')})`,
                );
              }
              const out: UnpackedArchive['components'] = [];
              for (const c of components) {
                const source = path.join(content, c);
                const target = archives.layout.workingFolder(op, c);
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
          archives.logger.info('archive unpacked', {
            file: verified.file,
            into: `${op}-data`,
            components,
          });
          return {
            node: archives.self,
            file: verified.file,
            sha256: verified.sha256,
            components: used,
          };
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
      return archives.activity(
        `restoreTest of ${input.backupId} on node ${archives.self}`,
        async (beat) => {
          const { used } = await archives.openVerified(input, beat, async (content, manifest) => {
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
                } else if (component === 'bundles') {
                  const set = await readBundleSet(folder);
                  out.push({
                    component,
                    items: set.jars.length,
                    detail: `${set.desired.length} desired bundles, ${set.jars.length} jars`,
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
                  `${archives.named(archives.archivePath(archives.checkKind(input.op), input.backupId))} would not restore ${component}: ${err.message}`,
                );
              }
            }
            return out;
          });
          archives.logger.info('restore test passed', {
            backupId: input.backupId,
            components: used,
          });
          return { node: archives.self, components: used };
        },
      );
    },
  };
}
