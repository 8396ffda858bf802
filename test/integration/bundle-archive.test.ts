import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createDataActivities, type DataActivities } from '../../activities/data-activities.js';
import { activityInterceptors } from '../../activities/interceptor.js';
import { BUNDLES_MANIFEST, type BundleSetManifest } from '../../src/bundles/backup.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { ManifestCommon } from '../../src/contracts/data-runbooks.js';
import type { Logger } from '../../src/logger.js';
import { writeTestJar } from '../helpers/bundles.js';

/**
 * A backup's bundle set on a real file system: an archive whose bundle set is whole verifies
 * and reads back; one whose jar is missing, or holds other content than the set names, is
 * refused by verifyArchive (verifyBackup, restoreCluster's checks) and by unpackArchive, with
 * the bundle, the jar and the node named — even when the archive's own manifest was rewritten
 * to match, so that only the bundle set can tell.
 */

const node = '127.0.0.24';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe("data activities: a backup's bundle set is whole or refused", () => {
  let dir: string;
  let layout: NodeLayout;
  let acts: DataActivities;
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('ERROR'),
    interceptors: activityInterceptors(),
  });
  const run = <R>(fn: () => Promise<R>): Promise<R> => env.run(fn);
  const jars: Record<'api' | 'provider' | 'other', { file: string; sha256: string }> = {
    api: { file: '', sha256: '' },
    provider: { file: '', sha256: '' },
    other: { file: '', sha256: '' },
  };
  const common = (): ManifestCommon => ({
    clusterId: 'bundles',
    members: [node],
    workflowId: 'cg/bundles/data',
    runId: 'run-1',
    createdAt: '2026-12-06T07:45:12.000Z',
    archives: [{ node, components: ['bundles'] }],
  });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-bundle-archive-'));
    layout = new NodeLayout(path.join(dir, 'root'));
    await layout.ensureAll();
    acts = createDataActivities({ address: node, layout, logger: quiet });
    await mkdir(path.join(dir, 'jars'));
    for (const [key, name, version] of [
      ['api', 'com.example.api', '1.0.0'],
      ['provider', 'com.example.provider', '1.0.0'],
      ['other', 'com.example.provider', '1.1.0'],
    ] as const) {
      jars[key] = await writeTestJar(path.join(dir, 'jars', `${key}.jar`), {
        symbolicName: name,
        version,
      });
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * backup-data/bundles as the bundles component leaves it, with `provider`'s jar written as
   * `providerContent` (undefined: left out), then archived as `id`.
   */
  async function archiveSet(id: string, providerContent: string | undefined) {
    const work = layout.workingFolder('backup', 'bundles');
    await rm(work, { recursive: true, force: true });
    await mkdir(path.join(work, 'jars'), { recursive: true });
    const entry = (key: 'api' | 'provider', name: string) => ({
      symbolicName: name,
      version: '1.0.0',
      sha256: jars[key].sha256,
      workflowId: `cg/bundles/bundle/${name}`,
      at: '2026-12-06T07:00:00.000Z',
    });
    const desired = [entry('api', 'com.example.api'), entry('provider', 'com.example.provider')];
    const set: BundleSetManifest = {
      component: 'bundles',
      version: 1,
      createdAt: '2026-12-06T07:45:12.000Z',
      node,
      desired,
      history: desired,
      jars: desired.map((d) => ({
        symbolicName: d.symbolicName,
        version: d.version,
        sha256: d.sha256,
        bytes: 1,
        path: `jars/${d.sha256}.jar`,
        from: `/store/${d.sha256}.jar`,
      })),
      installed: {},
    };
    await writeFile(path.join(work, BUNDLES_MANIFEST), JSON.stringify(set));
    await writeFile(
      path.join(work, 'jars', `${jars.api.sha256}.jar`),
      await readFile(jars.api.file),
    );
    if (providerContent !== undefined) {
      await writeFile(
        path.join(work, 'jars', `${jars.provider.sha256}.jar`),
        await readFile(providerContent),
      );
    }
    // archiveData lists what is there: the archive's manifest agrees with its files.
    return run(() =>
      acts.archiveData({ op: 'backup', backupId: id, components: ['bundles'], manifest: common() }),
    );
  }

  async function refused(call: () => Promise<unknown>, pattern: RegExp): Promise<void> {
    try {
      await run(call);
    } catch (err) {
      assert.ok(err instanceof ApplicationFailure, String(err));
      assert.equal(err.type, 'UnsafeArchive', err.message);
      assert.match(err.message, pattern);
      assert.match(err.message, new RegExp(`on node ${node.replace(/\./g, '\\.')}`));
      return;
    }
    assert.fail('expected a refusal');
  }

  test('a whole bundle set verifies, unpacks and reads back', async () => {
    const id = '20261206T074512Z-whole';
    await archiveSet(id, jars.provider.file);
    const verified = await run(() => acts.verifyArchive({ op: 'backup', backupId: id }));
    assert.deepEqual(verified.manifest.components, ['bundles']);
    const read = await run(() => acts.restoreTest({ op: 'backup', backupId: id }));
    assert.deepEqual(read.components, [
      { component: 'bundles', items: 2, detail: '2 desired bundles, 2 jars' },
    ]);
    await run(() => acts.unpackArchive({ op: 'restore', backupId: id, components: ['bundles'] }));
    assert.deepEqual(
      (await readdir(path.join(layout.workingFolder('restore', 'bundles'), 'jars'))).sort(),
      [`${jars.api.sha256}.jar`, `${jars.provider.sha256}.jar`].sort(),
    );
  });

  test('a missing jar is refused by verify and by unpack, naming the bundle and the node', async () => {
    const id = '20261206T074512Z-missing';
    await archiveSet(id, undefined);
    const jar = `bundles/jars/${jars.provider.sha256}.jar`;
    const pattern = new RegExp(
      `bundle jar com\\.example\\.provider 1\\.0\\.0 \\(${jar}\\) is missing`,
    );
    await refused(() => acts.verifyArchive({ op: 'backup', backupId: id }), pattern);
    const restoreData = layout.workingFolder('restore', 'bundles');
    const before = await readdir(path.join(restoreData, 'jars'));
    await refused(
      () => acts.unpackArchive({ op: 'restore', backupId: id, components: ['bundles'] }),
      pattern,
    );
    // Nothing was replaced: the working folder still holds what the whole backup put there.
    assert.deepEqual(await readdir(path.join(restoreData, 'jars')), before);
  });

  test('a jar whose sha256 is not the one the set names is refused', async () => {
    const id = '20261206T074512Z-mismatch';
    await archiveSet(id, jars.other.file);
    await refused(
      () => acts.verifyArchive({ op: 'backup', backupId: id }),
      new RegExp(
        `bundle jar com\\.example\\.provider 1\\.0\\.0 \\(bundles/jars/${jars.provider.sha256}\\.jar\\) ` +
          `has sha256 ${jars.other.sha256}, the bundle set names ${jars.provider.sha256}`,
      ),
    );
  });
});
