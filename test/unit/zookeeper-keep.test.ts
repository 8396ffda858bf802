import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NodeLayout } from '../../src/config/layout.js';
import {
  applyZooKeeperConfig,
  ensembleMarkerFile,
  keepsZooKeeperData,
} from '../../src/middleware/zookeeper/index.js';

/**
 * Which data a (re)joining ZooKeeper server keeps: its own ensemble's, never a stranger's. An
 * emptied member can help elect an empty leader when several come back at once.
 */
describe("a joining ZooKeeper server keeps only its own ensemble's data", () => {
  let root: string;
  let layout: NodeLayout;
  const files = { 'zoo.cfg': 'dataDir=@DATA@\nclientPort=2181\n', myid: '2\n' };
  const snapshot = () => path.join(layout.nodeDataFolder('zookeeper'), 'version-2');

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-zk-keep-'));
    layout = new NodeLayout(root);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('applying a configuration for a cluster writes the marker beside myid', async () => {
    await applyZooKeeperConfig(layout, files, { wipeData: false, clusterUuid: 'uuid-A' });
    await writeFile(snapshot(), 'the ensemble data');
    const marker = JSON.parse(
      await readFile(path.join(layout.nodeDataFolder('zookeeper'), ensembleMarkerFile), 'utf8'),
    ) as { clusterUuid: string; myid: number };
    assert.deepEqual(marker, { clusterUuid: 'uuid-A', myid: 2 });
  });

  test('same ensemble and server id: kept, on a join as on a rejoin', async () => {
    assert.equal(await keepsZooKeeperData(layout, '2', 'uuid-A', true), true);
    assert.equal(await keepsZooKeeperData(layout, '2', 'uuid-A', false), true);
  });

  test('another ensemble or another server id: wiped', async () => {
    assert.equal(await keepsZooKeeperData(layout, '2', 'uuid-B', true), false);
    assert.equal(await keepsZooKeeperData(layout, '3', 'uuid-A', true), false);
  });

  test('data from before the marker: kept only on a rejoin with the same myid', async () => {
    await rm(path.join(layout.nodeDataFolder('zookeeper'), ensembleMarkerFile));
    assert.equal(await keepsZooKeeperData(layout, '2', 'uuid-A', true), true);
    assert.equal(await keepsZooKeeperData(layout, '2', 'uuid-A', false), false);
    assert.equal(await keepsZooKeeperData(layout, '1', 'uuid-A', true), false);
  });

  test('a wipe empties the folder and leaves the new identity', async () => {
    await applyZooKeeperConfig(
      layout,
      { ...files, myid: '3\n' },
      {
        wipeData: true,
        clusterUuid: 'uuid-B',
      },
    );
    await assert.rejects(readFile(snapshot()), /ENOENT/);
    assert.equal(await keepsZooKeeperData(layout, '3', 'uuid-B', false), true);
  });
});
