import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { maxManifestBytes, readZipEntry } from '../src/archive/manifest.js';
import { zipFolder } from '../src/archive/zip.js';
import type { MiddlewareName } from '../src/config/layout.js';
import {
  archiveManifestFile,
  archiveManifestFormat,
  archiveManifestSchema,
  dataComponents,
  manifestCommonSchema,
  type ArchiveManifest,
  type DataArchive,
  type DataComponentName,
} from '../src/contracts/data-runbooks.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import { describeZodError } from '../src/contracts/validation.js';
import { hashFiles, regularFiles } from './archive-files.js';
import type { ArchiveContext, ArchiveDataInput } from './data-archives.js';

/** Writing archives: what this node can back up, and `<op>-data/` zipped with its manifest. */
export function createArchiveWriteActivities(archives: ArchiveContext) {
  const { deps, self, layout, logger, checkComponents, archivePath, dataRoot, named, activity } =
    archives;
  return {
    /**
     * What this node can back up: its enabled middleware, the controller when configured, and
     * the application's bundle set when it keeps one.
     */
    async dataSources(): Promise<{
      node: string;
      enabled: MiddlewareName[];
      controller: boolean;
      bundles: boolean;
    }> {
      return {
        node: self,
        enabled: [...(deps.sources?.enabled ?? [])],
        controller: (deps.sources?.controllerDataFolders.length ?? 0) > 0,
        bundles: (await deps.sources?.bundles?.()) ?? false,
      };
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
  };
}
