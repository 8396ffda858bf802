import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  desiredHistory,
  readDesiredBundles,
  recordDesiredBundle,
} from '../../src/bundles/desired.js';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { createLogger } from '../../src/logger.js';
import { assignMemberIds, type MiddlewareAdapter } from '../../src/middleware/kit/index.js';
import { createZooKeeperAdapter } from '../../src/middleware/zookeeper/index.js';
import { repoRoot } from '../../src/process.js';

// This file's own address; .162 has nothing listening.
const address = '127.0.0.161';
const zk = `${address}:2181`;
const binDir = process.env.CG_ZOOKEEPER_BIN_DIR ?? path.join(repoRoot, '.tools');

const entry = (version: string, at: string) => ({
  symbolicName: 'com.example.greeter.provider',
  version,
  sha256: version.replace(/\./g, '').padEnd(64, '0'),
  workflowId: 'cg/t/bundle/com.example.greeter.provider',
  at,
});

describe("the cluster's desired bundle set in a real ZooKeeper", { timeout: 120_000 }, () => {
  let root: string;
  let adapter: MiddlewareAdapter;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-desired-'));
    adapter = createZooKeeperAdapter({
      address,
      layout: new NodeLayout(root),
      binDir,
      logger: createLogger('desired-test', 'warn'),
    });
    await adapter.createCluster!({
      nodes: [address],
      decommissionNodes: [],
      memberIds: assignMemberIds([address], {}),
      clusterUuid: 'desired-test-uuid-0',
    });
  });
  after(async () => {
    await adapter?.stopServer({ force: true }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  test('nothing rolled out: an empty set', async () => {
    assert.deepEqual(await readDesiredBundles(zk), []);
  });

  test('the latest completed version is desired; every version is kept', async () => {
    await recordDesiredBundle(zk, entry('1.0.0', '2026-12-06T01:00:00.000Z'));
    await recordDesiredBundle(zk, entry('1.1.0', '2026-12-06T02:00:00.000Z'));
    assert.deepEqual(await readDesiredBundles(zk), [entry('1.1.0', '2026-12-06T02:00:00.000Z')]);
    const history = await desiredHistory(zk, 'com.example.greeter.provider');
    assert.deepEqual(
      history.map((h) => h.version),
      ['1.0.0', '1.1.0'],
    );
    // Recording again (a retried activity) changes nothing.
    await recordDesiredBundle(zk, entry('1.1.0', '2026-12-06T02:00:00.000Z'));
    assert.equal((await desiredHistory(zk, 'com.example.greeter.provider')).length, 2);
  });

  test('the set comes in the order the bundles came into the cluster, not by name', async () => {
    // A consumer rolled out after its provider sorts before it by name: installed in name
    // order on a joining node, it would find no provider and be refused.
    const consumer = { ...entry('1.0.0', '2026-12-06T03:00:00.000Z'), symbolicName: 'a.consumer' };
    await recordDesiredBundle(zk, consumer);
    assert.deepEqual(
      (await readDesiredBundles(zk)).map((d) => d.symbolicName),
      ['com.example.greeter.provider', 'a.consumer'],
    );
  });

  test('a name that cannot be a znode is refused; no server is a fast MiddlewareFailure', async () => {
    await assert.rejects(
      recordDesiredBundle(zk, { ...entry('1.0.0', 'x'), symbolicName: 'a/b' }),
      (err: unknown) => err instanceof ClusterGuardError && err.type === 'InvalidInput',
    );
    const t0 = Date.now();
    await assert.rejects(
      readDesiredBundles('127.0.0.162:2181'),
      (err: unknown) => err instanceof ClusterGuardError && err.type === 'MiddlewareFailure',
    );
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });
});
