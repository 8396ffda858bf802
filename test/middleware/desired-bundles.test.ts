import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUNDLES_MANIFEST, createBundlesAdapter } from '../../src/bundles/backup.js';
import {
  desiredHistory,
  readDesiredBundles,
  readDesiredRecords,
  recordDesiredBundle,
  replaceDesiredBundles,
} from '../../src/bundles/desired.js';
import { BundleStore } from '../../src/bundles/store.js';
import { defaultClusterFile, serializeClusterFile } from '../../src/contracts/cluster-file.js';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { createLogger } from '../../src/logger.js';
import { assignMemberIds, type MiddlewareAdapter } from '../../src/middleware/kit/index.js';
import { createZooKeeperAdapter } from '../../src/middleware/zookeeper/index.js';
import { repoRoot } from '../../src/process.js';
import { writeTestJar } from '../helpers/bundles.js';

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

  test('a backed-up record goes back whole: its order, its history, nothing recorded since', async () => {
    const before = await readDesiredRecords(zk);
    assert.deepEqual(
      before.desired.map((d) => `${d.symbolicName} ${d.version}`),
      ['com.example.greeter.provider 1.1.0', 'a.consumer 1.0.0'],
    );
    assert.equal(before.history.length, 3);
    // Recorded after the backup: a new bundle and a new version.
    await recordDesiredBundle(zk, {
      ...entry('1.0.0', '2026-12-06T04:00:00.000Z'),
      symbolicName: 'b.extra',
    });
    await recordDesiredBundle(zk, entry('1.2.0', '2026-12-06T05:00:00.000Z'));
    // A ZooKeeper restore creates znodes by path: the consumer would come first.
    await replaceDesiredBundles(zk, {
      desired: [...before.desired].reverse(),
      history: before.history,
    });
    assert.deepEqual(
      (await readDesiredBundles(zk)).map((d) => d.symbolicName),
      ['a.consumer', 'com.example.greeter.provider'],
    );
    const t0 = Date.now();
    await replaceDesiredBundles(zk, before);
    const ms = Date.now() - t0;
    assert.deepEqual(await readDesiredRecords(zk), before);
    assert.deepEqual(
      (await desiredHistory(zk, 'com.example.greeter.provider')).map((h) => h.version),
      ['1.0.0', '1.1.0'],
    );
    console.error(`[desired] the record written back in ${ms} ms`);
  });

  test('the bundles component: jars and record backed up, refused when a jar is missing or not the one named', async () => {
    const layout = new NodeLayout(path.join(root, 'node'));
    await layout.ensureAll();
    await writeFile(
      layout.clusterFile,
      serializeClusterFile(defaultClusterFile(new Date(), address)),
    );
    const logger = createLogger('bundles-backup-test', 'warn');
    const bundles = createBundlesAdapter({
      address,
      layout,
      binDir,
      logger,
      options: { zooKeeper: true, zooKeeperClientPort: 2181 },
    });
    const store = new BundleStore(layout.bundleStoreFolder);
    const jars = path.join(root, 'jars');
    await mkdir(jars, { recursive: true });
    const stored: Record<string, string> = {};
    for (const [name, version] of [
      ['api.bundle', '1.0.0'],
      ['provider.bundle', '1.0.0'],
    ] as const) {
      const jar = await writeTestJar(path.join(jars, `${name}.jar`), {
        symbolicName: name,
        version,
      });
      const temp = await store.tempFile();
      await writeFile(temp, await readFile(jar.file));
      stored[name] = (await store.adopt(temp)).sha256;
    }
    const set = (name: keyof typeof stored, at: string) => ({
      symbolicName: name,
      version: '1.0.0',
      sha256: stored[name] ?? '',
      workflowId: `cg/t/bundle/${name}`,
      at,
    });
    await replaceDesiredBundles(zk, {
      desired: [
        set('api.bundle', '2026-12-06T06:00:00.000Z'),
        set('provider.bundle', '2026-12-06T06:01:00.000Z'),
      ],
      history: [],
    });

    const backedUp = await bundles.backupData!();
    assert.deepEqual(
      backedUp.files.map((f) => f.path).sort(),
      [
        BUNDLES_MANIFEST,
        `jars/${stored['api.bundle']}.jar`,
        `jars/${stored['provider.bundle']}.jar`,
      ].sort(),
    );

    // Restore onto a node whose store lacks the jars, after the set changed.
    const work = layout.workingFolder('restore', 'bundles');
    await rm(work, { recursive: true, force: true });
    await mkdir(path.dirname(work), { recursive: true });
    await cp(layout.workingFolder('backup', 'bundles'), work, { recursive: true });
    await rm(layout.bundleStoreFolder, { recursive: true, force: true });
    await recordDesiredBundle(zk, {
      ...set('provider.bundle', '2026-12-06T07:00:00.000Z'),
      version: '2.0.0',
    });

    // A jar whose content is not the one the set names: refused before anything changes.
    const providerJar = path.join(work, 'jars', `${stored['provider.bundle']}.jar`);
    const good = await readFile(providerJar);
    await writeFile(providerJar, await readFile(path.join(jars, 'api.bundle.jar')));
    await assert.rejects(bundles.restoreData!(), (err: unknown) => {
      assert.ok(err instanceof ClusterGuardError && err.type === 'UnsafeArchive', String(err));
      assert.match(
        err.message,
        new RegExp(
          `bundle jar provider\\.bundle 1\\.0\\.0 .* on node ${address.replace(/\./g, '\\.')} has sha256`,
        ),
      );
      return true;
    });
    await rm(providerJar);
    await assert.rejects(
      bundles.restoreData!(),
      /bundle jar provider\.bundle 1\.0\.0 .* is missing/,
    );
    assert.deepEqual(await readdir(layout.bundleStoreFolder).catch(() => []), []);
    assert.equal(
      (await readDesiredBundles(zk)).find((d) => d.symbolicName === 'provider.bundle')?.version,
      '2.0.0',
    );

    await writeFile(providerJar, good);
    await bundles.restoreData!();
    assert.deepEqual(
      (await readDesiredBundles(zk)).map((d) => `${d.symbolicName} ${d.version}`),
      ['api.bundle 1.0.0', 'provider.bundle 1.0.0'],
    );
    assert.ok(await store.get(stored['provider.bundle'] ?? ''), 'the jar is back in the store');

    // A desired jar this node's store lacks: the backup names it and the node.
    await rm(layout.bundleStoreFolder, { recursive: true, force: true });
    await assert.rejects(
      bundles.backupData!(),
      new RegExp(
        `the jar of api\\.bundle 1\\.0\\.0.* is not in the bundle store of ${address.replace(/\./g, '\\.')}`,
      ),
    );
  });
});
