import assert from 'node:assert/strict';
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError, type ErrorType } from '../../src/contracts/errors.js';
import type { Logger } from '../../src/logger.js';
import {
  CONTROLLER_MANIFEST,
  controllerManifestSchema,
  createControllerAdapter,
  parseControllerOptions,
  type ControllerOptions,
} from '../../src/middleware/controller/index.js';

const isError = (type: ErrorType, pattern?: RegExp) => (err: unknown) =>
  err instanceof ClusterGuardError && err.type === type && (!pattern || pattern.test(err.message));

// As an archive round trip keeps them: links stay links, relative stays relative.
const verbatim = { recursive: true, verbatimSymlinks: true } as const;

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Every file and symlink under `folder` (relative path → content or link target). */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    const rel = path.relative(folder, full);
    if (entry.isFile()) out[rel] = await readFile(full, 'utf8');
    else if (entry.isSymbolicLink()) out[rel] = `-> ${await readlink(full)}`;
    else if (entry.isDirectory()) out[`${rel}/`] = '';
  }
  return out;
}

describe('controller adapter', () => {
  let tmp: string;
  let root: string;
  let layout: NodeLayout;
  let appData: string;
  let appConf: string;

  const adapter = (options: Partial<ControllerOptions>, progress: string[] = []) =>
    createControllerAdapter({
      address: '127.0.0.11',
      layout,
      binDir: '/nonexistent',
      options,
      logger: quiet,
      onProgress: (d) => progress.push(d),
    });

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'cg-controller-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    const run = await mkdtemp(path.join(tmp, 'run-'));
    root = path.join(run, 'guard');
    layout = new NodeLayout(root);
    // Two folders with the same base name: the index keeps their copies apart.
    appData = path.join(run, 'opt', 'controller', 'data');
    appConf = path.join(run, 'etc', 'controller', 'data');
    await mkdir(path.join(appData, 'nested', 'deeper'), { recursive: true });
    await writeFile(path.join(appData, 'state.json'), '{"version":1}');
    await writeFile(path.join(appData, 'nested', 'deeper', 'blob.bin'), 'binary-ish\u0000data');
    await mkdir(path.join(appData, 'empty-dir'));
    await mkdir(appConf, { recursive: true });
    await writeFile(path.join(appConf, 'controller.yml'), 'port: 9443\n');
    await symlink('controller.yml', path.join(appConf, 'current.yml'));
  });

  test('backup copies every folder with a manifest; restore puts them back and keeps the old content aside', async () => {
    const progress: string[] = [];
    const controller = adapter({ dataFolders: [appData, appConf] }, progress);
    const original = { data: await snapshot(appData), conf: await snapshot(appConf) };

    const backup = await controller.backupData!();
    const work = layout.workingFolder('backup', 'controller');
    assert.equal(backup.folder, work);
    assert.deepEqual((await readdir(work)).sort(), ['data-0', 'data-1', CONTROLLER_MANIFEST]);
    assert.ok(
      backup.files.some((f) => f.path === path.join('data-0', 'nested', 'deeper', 'blob.bin')),
    );
    const manifest = controllerManifestSchema.parse(
      JSON.parse(await readFile(path.join(work, CONTROLLER_MANIFEST), 'utf8')),
    );
    assert.deepEqual(
      manifest.folders.map((f) => [f.source, f.entry, f.files]),
      [
        [appData, 'data-0', 2],
        [appConf, 'data-1', 1],
      ],
    );

    // The application carries on and changes its data after the backup.
    await writeFile(path.join(appData, 'state.json'), '{"version":2}');
    await rm(path.join(appData, 'nested'), { recursive: true });
    await writeFile(path.join(appData, 'created-later.txt'), 'new');
    const changed = await snapshot(appData);

    // The archive comes back (the runbook unzips it into restore-data/controller).
    await cp(work, layout.workingFolder('restore', 'controller'), verbatim);
    const restored = await controller.restoreData!();
    assert.equal(restored.folder, layout.workingFolder('restore', 'controller'));

    assert.deepEqual(await snapshot(appData), original.data);
    assert.deepEqual(await snapshot(appConf), original.conf);
    assert.equal(await readFile(path.join(appConf, 'current.yml'), 'utf8'), 'port: 9443\n');

    const siblings = await readdir(path.dirname(appData));
    const aside = siblings.filter((s) => /^data\.before-restore-\d{8}T\d{6}Z$/.test(s));
    assert.equal(aside.length, 1, siblings.join(', '));
    assert.deepEqual(await snapshot(path.join(path.dirname(appData), aside[0]!)), changed);
    assert.ok(!siblings.some((s) => s.includes('.restoring-')), 'no temp folder is left behind');
    assert.ok(progress.some((p) => p.includes('before-restore')));
  });

  test('a missing configured folder is a clear configuration error and keeps the previous backup', async () => {
    await adapter({ dataFolders: [appData] }).backupData!();
    const missing = path.join(tmp, 'does', 'not', 'exist');
    await assert.rejects(
      adapter({ dataFolders: [appData, missing] }).backupData!(),
      isError(
        'InvalidConfig',
        new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .*does not exist`),
      ),
    );
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'x');
    await assert.rejects(
      adapter({ dataFolders: [file] }).backupData!(),
      isError('InvalidConfig', /is not a folder/),
    );
    await assert.rejects(
      adapter({ dataFolders: [] }).backupData!(),
      isError('InvalidConfig', /nothing to back up/),
    );
    const previous = await readdir(layout.workingFolder('backup', 'controller'));
    assert.deepEqual(previous.sort(), ['data-0', CONTROLLER_MANIFEST]);
  });

  test('restore writes only to configured folders, and creates one that does not exist yet', async () => {
    await adapter({ dataFolders: [appData, appConf] }).backupData!();
    const restoreWork = layout.workingFolder('restore', 'controller');
    await cp(layout.workingFolder('backup', 'controller'), restoreWork, verbatim);

    // A node whose configuration lists only one of the two folders refuses the whole restore.
    await assert.rejects(
      adapter({ dataFolders: [appConf] }).restoreData!(),
      isError('UnsafeArchive', /would restore .*data, which is not among/),
    );
    assert.equal(await readFile(path.join(appData, 'state.json'), 'utf8'), '{"version":1}');

    // A fresh node: the folders are not there yet, nothing needs to be set aside.
    await rm(appData, { recursive: true });
    await rm(appConf, { recursive: true });
    await adapter({ dataFolders: [appData, appConf] }).restoreData!();
    assert.equal(await readFile(path.join(appData, 'state.json'), 'utf8'), '{"version":1}');
    const siblings = await readdir(path.dirname(appData));
    assert.deepEqual(siblings, ['data']);

    await rm(path.join(restoreWork, CONTROLLER_MANIFEST));
    await assert.rejects(
      adapter({ dataFolders: [appData] }).restoreData!(),
      isError('InvalidInput', /no manifest\.json/),
    );
    await writeFile(
      path.join(restoreWork, CONTROLLER_MANIFEST),
      JSON.stringify({
        component: 'controller',
        version: 1,
        createdAt: 'x',
        node: 'n',
        folders: [{ source: appData, entry: '../escape', files: 0, bytes: 0 }],
      }),
    );
    await assert.rejects(
      adapter({ dataFolders: [appData] }).restoreData!(),
      isError('UnsafeArchive'),
    );
  });

  test('start, stop and check report that the controller is not supervised, without failing', async () => {
    const controller = adapter({ dataFolders: [appData] });
    assert.equal(controller.name, 'controller');
    const started = await controller.startServer();
    assert.equal(started.running, false);
    assert.match(started.detail, /not supervised by clusterguard/);
    await controller.stopServer();
    assert.deepEqual(await controller.checkServer(), started);
    assert.ok(!('createCluster' in controller) && !('decommissionCluster' in controller));
  });

  test('options: absolute, distinct, not nested', () => {
    assert.deepEqual(parseControllerOptions({ dataFolders: ['/a/b/'] }), { dataFolders: ['/a/b'] });
    assert.throws(
      () => parseControllerOptions({ dataFolders: ['relative/path'] }),
      isError('InvalidConfig', /absolute/),
    );
    assert.throws(
      () => parseControllerOptions({ dataFolders: ['/a', '/a/b'] }),
      isError('InvalidConfig', /overlap/),
    );
    assert.throws(
      () => parseControllerOptions({ dataFolders: ['/a', '/a/'] }),
      isError('InvalidConfig', /twice/),
    );
    assert.throws(
      () => parseControllerOptions({ dataFolders: ['/'] }),
      isError('InvalidConfig', /root/),
    );
  });
});
