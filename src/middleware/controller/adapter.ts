import { cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { archiveTimestamp } from '../../config/layout.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import {
  listData,
  wipeFolder,
  withOperations,
  type AdapterDeps,
  type DataResult,
  type MiddlewareAdapter,
  type ServerStatus,
} from '../kit/index.js';
import {
  CONTROLLER_MANIFEST,
  controllerEntryName,
  controllerManifestSchema,
  parseControllerOptions,
  type ControllerManifest,
  type ControllerOptions,
} from './options.js';

async function isDirectory(p: string): Promise<boolean | undefined> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return undefined;
  }
}

const copyOptions = { recursive: true, verbatimSymlinks: true, preserveTimestamps: true } as const;

/** A path that does not exist yet: `base`, else `base-2`, `base-3`, … */
async function freePath(base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}-${n}`;
    if ((await isDirectory(candidate)) === undefined) return candidate;
  }
}

export function createControllerAdapter(deps: AdapterDeps<ControllerOptions>): MiddlewareAdapter {
  const { dataFolders } = parseControllerOptions(deps.options);
  const { address, layout, logger } = deps;

  // running:false says that clusterguard runs no controller process (it neither starts it nor
  // knows its pid), not that the controller is down: health of the controller comes from its
  // own API, which the guardian polls.
  const notSupervised: ServerStatus = {
    running: false,
    healthy: false,
    detail:
      'the controller is not supervised by clusterguard (the appliance runs it); only its data is backed up and restored',
  };

  async function backupData(): Promise<DataResult> {
    if (dataFolders.length === 0) {
      throw new ClusterGuardError(
        'InvalidConfig',
        'no controller dataFolders are configured on this node: nothing to back up',
      );
    }
    // Checked before the working folder is emptied, so a bad configuration costs no old backup.
    for (const folder of dataFolders) {
      const dir = await isDirectory(folder);
      if (!dir) {
        throw new ClusterGuardError(
          'InvalidConfig',
          `controller data folder ${folder} (controller.dataFolders) ${dir === false ? 'is not a folder' : 'does not exist'}; ` +
            'create it or correct the agent configuration',
        );
      }
    }
    const work = layout.workingFolder('backup', 'controller');
    await wipeFolder(work);
    const folders: ControllerManifest['folders'] = [];
    for (const [index, source] of dataFolders.entries()) {
      const entry = controllerEntryName(source, index);
      await cp(source, path.join(work, entry), copyOptions);
      const copied = await listData(path.join(work, entry));
      folders.push({
        source,
        entry,
        files: copied.files.length,
        bytes: copied.files.reduce((n, f) => n + f.bytes, 0),
      });
    }
    const manifest: ControllerManifest = {
      component: 'controller',
      version: 1,
      createdAt: new Date().toISOString(),
      node: address,
      folders,
    };
    await writeFile(path.join(work, CONTROLLER_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    logger.info('controller: data backed up', { folders: folders.map((f) => f.source) });
    return listData(work);
  }

  async function readManifest(work: string): Promise<ControllerManifest> {
    let text: string;
    try {
      text = await readFile(path.join(work, CONTROLLER_MANIFEST), 'utf8');
    } catch {
      throw new ClusterGuardError(
        'InvalidInput',
        `nothing to restore: ${work} has no ${CONTROLLER_MANIFEST}; unpack a controller backup there first`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `${path.join(work, CONTROLLER_MANIFEST)} is not JSON`,
      );
    }
    const parsed = controllerManifestSchema.safeParse(json);
    if (!parsed.success) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `${path.join(work, CONTROLLER_MANIFEST)} is not a controller backup manifest: ${parsed.error.message}`,
      );
    }
    return parsed.data;
  }

  /**
   * Each folder of the backup goes back where it came from: copied to a sibling temp folder, then
   * swapped in by rename; what was there stays as `<folder>.before-restore-<timestamp>`. All
   * copies are made before the first swap, so a failing copy changes nothing.
   */
  async function restoreData(): Promise<DataResult> {
    const work = layout.workingFolder('restore', 'controller');
    const manifest = await readManifest(work);
    for (const f of manifest.folders) {
      const source = path.resolve(f.source);
      if (!dataFolders.includes(source)) {
        // Only folders named by this node's own configuration are ever written.
        throw new ClusterGuardError(
          'UnsafeArchive',
          `the backup would restore ${source}, which is not among this node's controller.dataFolders ` +
            `(${dataFolders.join(', ') || 'none'}); refusing to write there`,
        );
      }
      if (!(await isDirectory(path.join(work, f.entry)))) {
        throw new ClusterGuardError(
          'InvalidInput',
          `the backup lists ${f.entry} for ${source}, but ${path.join(work, f.entry)} is missing`,
        );
      }
    }
    const untouched = dataFolders.filter(
      (d) => !manifest.folders.some((f) => path.resolve(f.source) === d),
    );
    if (untouched.length) {
      logger.warn('controller: the backup does not contain these folders; left as they are', {
        folders: untouched,
      });
    }

    const stamp = archiveTimestamp(new Date());
    const staged: { target: string; temp: string }[] = [];
    try {
      for (const f of manifest.folders) {
        const target = path.resolve(f.source);
        const temp = await freePath(`${target}.restoring-${stamp}`);
        await mkdir(path.dirname(target), { recursive: true });
        staged.push({ target, temp });
        await cp(path.join(work, f.entry), temp, copyOptions);
      }
    } catch (err) {
      await Promise.all(staged.map((s) => rm(s.temp, { recursive: true, force: true })));
      throw err;
    }

    const keptAside: string[] = [];
    for (const { target, temp } of staged) {
      const existed = (await isDirectory(target)) !== undefined;
      const aside = existed ? await freePath(`${target}.before-restore-${stamp}`) : undefined;
      if (aside) await rename(target, aside);
      try {
        await rename(temp, target);
      } catch (err) {
        if (aside) await rename(aside, target);
        throw err;
      }
      if (aside) keptAside.push(aside);
    }
    logger.info('controller: data restored', {
      folders: staged.map((s) => s.target),
      keptAside,
    });
    if (keptAside.length) {
      deps.onProgress?.(`controller: previous data kept in ${keptAside.join(', ')}`);
    }
    return listData(work);
  }

  return withOperations({
    name: 'controller',
    startServer: () => Promise.resolve(notSupervised),
    stopServer: () => Promise.resolve(),
    checkServer: () => Promise.resolve(notSupervised),
    backupData,
    restoreData,
  });
}
