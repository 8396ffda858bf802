import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../activities/interceptor.js';
import { DefaultLogger } from '@temporalio/worker';
import { createDataActivities, type DataActivities } from '../../activities/data-activities.js';
import { extractZip, zipFolder } from '../../src/archive/zip.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { ManifestCommon } from '../../src/contracts/data-runbooks.js';
import type { Logger } from '../../src/logger.js';

/**
 * The data activities on a real file system (a temp root per test file): archives written
 * with a manifest, read back and checked file by file, refused when tampered, truncated or
 * missing, unpacked into the folders restoreData reads, and pruned by retention.
 */

const node = '127.0.0.21';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function environment(): MockActivityEnvironment {
  // The SDK logs every failed activity; the failures here are the point of the tests.
  return new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('ERROR'),
    interceptors: activityInterceptors(),
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function filesUnder(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(folder, full).split(path.sep).join('/')] = sha256(await readFile(full));
  }
  return out;
}

/** The refusal an activity raised: its type and message. */
async function refusedWith(call: Promise<unknown>, type: string, pattern: RegExp): Promise<string> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    assert.equal(err.type, type, err.message);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return err.message;
  }
  assert.fail('expected a refusal');
}

describe('data activities: archive, verify, unpack, prune', () => {
  let dir: string;
  let layout: NodeLayout;
  let acts: DataActivities;
  const env = environment();
  const run = <R>(fn: () => Promise<R>): Promise<R> => env.run(fn);
  const common = (runId = 'run-1'): ManifestCommon => ({
    clusterId: 'data',
    members: [node, '127.0.0.22', '127.0.0.23'],
    workflowId: 'cg/data/data',
    runId,
    createdAt: '2026-11-22T07:45:12.000Z',
    archives: [{ node, components: ['zookeeper', 'kafka', 'controller'] }],
  });
  const components = ['zookeeper', 'kafka', 'controller'] as const;
  let original: Record<string, string>;

  /** Working folders as the adapters leave them after backupData, plus an earlier run's junk. */
  async function writeBackupData(): Promise<void> {
    const zk = layout.workingFolder('backup', 'zookeeper');
    const kafka = layout.workingFolder('backup', 'kafka');
    const controller = layout.workingFolder('backup', 'controller');
    for (const f of [zk, kafka, path.join(controller, 'etc-0', 'sub')])
      await mkdir(f, { recursive: true });
    await writeFile(
      path.join(zk, 'znodes.json'),
      JSON.stringify({ znodes: [{ path: '/a', data: 'YQ==' }] }),
    );
    await writeFile(path.join(kafka, 'messages-manifest.json'), '{"topics":[]}\n');
    await writeFile(path.join(kafka, 'orders.jsonl'), '{"partition":0}\n'.repeat(200));
    await writeFile(path.join(controller, 'manifest.json'), '{"component":"controller"}\n');
    // Incompressible and a few MB: hashed and zipped in chunks.
    await writeFile(path.join(controller, 'etc-0', 'sub', 'big.bin'), randomBytes(3 * 1024 * 1024));
    await writeFile(path.join(controller, 'etc-0', 'empty.txt'), '');
    const stale = layout.workingFolder('backup', 'cockroach');
    await mkdir(stale, { recursive: true });
    await writeFile(path.join(stale, 'from-an-earlier-run'), 'x');
    await writeFile(path.join(layout.root, 'backup-data', 'stray.txt'), 'x');
  }

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-data-'));
    layout = new NodeLayout(path.join(dir, 'root'));
    await layout.ensureAll();
    acts = createDataActivities({
      address: node,
      layout,
      logger: quiet,
      sources: { enabled: ['zookeeper', 'kafka'], controllerDataFolders: ['/srv/app'] },
      probeVersions: () =>
        Promise.resolve([
          { name: 'zookeeper', found: true, version: '3.9.3' },
          { name: 'kafka', found: true, version: '3.9.0' },
          { name: 'cockroach', found: false },
        ]),
    });
    await writeBackupData();
    original = {
      ...(await filesUnder(path.join(layout.root, 'backup-data', 'zookeeper'))),
    };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An archive of the working folders under `id`; returns its path. */
  async function archive(id: string, runId = 'run-1') {
    return run(() =>
      acts.archiveData({
        op: 'backup',
        backupId: id,
        components: [...components],
        manifest: common(runId),
      }),
    );
  }

  /** Rewrites the archive `id` with `change` applied to its extracted content. */
  async function tamper(id: string, change: (content: string) => Promise<void>): Promise<string> {
    const file = path.join(layout.archiveFolder('backup'), `${id}.zip`);
    const work = path.join(dir, `tamper-${id}`);
    await extractZip(file, work);
    await change(work);
    await zipFolder(work, file);
    await rm(work, { recursive: true, force: true });
    return file;
  }

  test('dataSources reports what the agent is configured to back up', async () => {
    assert.deepEqual(await run(() => acts.dataSources()), {
      node,
      enabled: ['zookeeper', 'kafka'],
      controller: true,
      bundles: false,
    });
  });

  test('archive and verify round trip; the manifest lists every file with its sha256', async () => {
    const started = Date.now();
    const id = '20261122T074512Z-round';
    const written = await archive(id);
    const file = path.join(layout.archiveFolder('backup'), `${id}.zip`);
    assert.equal(written.file, file);
    assert.equal(written.node, node);
    const bytes = await readFile(file);
    assert.equal(written.sha256, sha256(bytes));
    assert.equal(written.bytes, bytes.length);
    // 6 files of three components and the manifest; the earlier run's leftovers are out.
    assert.equal(written.entries, 7);

    const manifest = JSON.parse(
      await readFile(path.join(layout.root, 'backup-data', 'manifest.json'), 'utf8'),
    ) as {
      files: { path: string; bytes: number; sha256: string }[];
      versions: unknown;
      node: string;
      backupId: string;
    };
    assert.equal(manifest.backupId, id);
    assert.equal(manifest.node, node);
    assert.deepEqual(manifest.versions, { zookeeper: '3.9.3', kafka: '3.9.0' });
    assert.deepEqual(
      manifest.files.map((f) => f.path),
      [
        'controller/etc-0/empty.txt',
        'controller/etc-0/sub/big.bin',
        'controller/manifest.json',
        'kafka/messages-manifest.json',
        'kafka/orders.jsonl',
        'zookeeper/znodes.json',
      ],
    );
    assert.equal(
      manifest.files.find((f) => f.path === 'zookeeper/znodes.json')?.sha256,
      original['znodes.json'],
    );

    const verified = await run(() =>
      acts.verifyArchive({ op: 'backup', backupId: id, sha256: written.sha256 }),
    );
    assert.equal(verified.files, 6);
    assert.equal(verified.sha256, written.sha256);
    assert.equal(
      verified.dataBytes,
      manifest.files.reduce((n, f) => n + f.bytes, 0),
    );
    assert.equal(verified.manifest.clusterId, 'data');
    assert.deepEqual(verified.manifest.members, common().members);
    console.error(`[data] archive + verify of ${written.bytes} bytes: ${Date.now() - started} ms`);
  });

  test('a retry of the same run rebuilds the same archive; another run may not replace it', async () => {
    const id = '20261122T074513Z';
    const first = await archive(id);
    const again = await archive(id);
    assert.equal(again.sha256, first.sha256);
    await refusedWith(
      archive(id, 'run-2'),
      'InvalidInput',
      /20261122T074513Z\.zip on node 127\.0\.0\.21 already exists, written by cg\/data\/data run run-1/,
    );
  });

  test('a component whose working folder is empty is refused (its backupData did not run)', async () => {
    await refusedWith(
      run(() =>
        acts.archiveData({
          op: 'backup',
          backupId: '20261122T074514Z',
          components: ['cockroach'],
          manifest: common(),
        }),
      ),
      'InvalidInput',
      /backup-data\/cockroach on node 127\.0\.0\.21 is empty: backupData of cockroach has not run/,
    );
    await writeBackupData();
  });

  test('a file changed inside the archive is refused, naming the file and the archive', async () => {
    const id = '20261122T074515Z';
    await archive(id);
    const file = await tamper(id, (content) =>
      writeFile(path.join(content, 'zookeeper', 'znodes.json'), '{"znodes":[]}'),
    );
    const message = await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id })),
      'UnsafeArchive',
      /zookeeper\/znodes\.json has \d+ bytes, the manifest says \d+/,
    );
    assert.ok(message.includes(`archive ${file} on node ${node}`), message);

    // Same size, other bytes: the hash tells.
    const id2 = '20261122T074516Z';
    await archive(id2);
    await tamper(id2, async (content) => {
      const f = path.join(content, 'kafka', 'orders.jsonl');
      const text = await readFile(f, 'utf8');
      await writeFile(f, text.replace('"partition":0', '"partition":1'));
    });
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id2 })),
      'UnsafeArchive',
      /kafka\/orders\.jsonl has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/,
    );

    // A file slipped in.
    const id3 = '20261122T074517Z';
    await archive(id3);
    await tamper(id3, (content) => writeFile(path.join(content, 'zookeeper', 'extra.json'), '{}'));
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id3 })),
      'UnsafeArchive',
      /zookeeper\/extra\.json is not in the manifest/,
    );
  });

  test('a flipped byte is refused by the sha256 given, or by the entry it hit', async () => {
    const id = '20261122T074518Z';
    const written = await archive(id);
    const data = await readFile(written.file);
    // The middle of the archive lies in the 3 MB incompressible file.
    const at = Math.floor(data.length / 2);
    data[at] = (data[at] ?? 0) ^ 0xff;
    await writeFile(written.file, data);
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id, sha256: written.sha256 })),
      'UnsafeArchive',
      new RegExp(
        `${id}\\.zip on node 127\\.0\\.0\\.21 has sha256 [0-9a-f]{64}, but it was written with ${written.sha256}`,
      ),
    );
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id })),
      'UnsafeArchive',
      /entry "controller\/etc-0\/sub\/big\.bin" (fails its CRC-32 check|is corrupt)/,
    );
  });

  test('a truncated archive is refused, naming the file', async () => {
    const id = '20261122T074519Z';
    const written = await archive(id);
    await truncate(written.file, Math.floor(written.bytes / 2));
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: id })),
      'UnsafeArchive',
      new RegExp(
        `archive ${written.file.replace(/[.]/g, '\\.')} on node 127\\.0\\.0\\.21 is not a readable zip archive: truncated`,
      ),
    );
  });

  test('a missing archive is refused, naming the node and the file', async () => {
    const file = path.join(layout.archiveFolder('backup'), '20261122T074520Z.zip');
    await refusedWith(
      run(() => acts.verifyArchive({ op: 'backup', backupId: '20261122T074520Z' })),
      'InvalidInput',
      new RegExp(
        `node 127\\.0\\.0\\.21 has no archive of backup 20261122T074520Z: ${file.replace(/[.]/g, '\\.')} does not exist`,
      ),
    );
  });

  test('backup ids that are paths are refused before any file is touched', async () => {
    for (const backupId of ['../x', '../../conf/cluster', '20261122T074512Z/../../x']) {
      await refusedWith(
        run(() => acts.verifyArchive({ op: 'backup', backupId })),
        'InvalidInput',
        /is not a backup id/,
      );
      await refusedWith(
        run(() =>
          acts.archiveData({
            op: 'backup',
            backupId,
            components: ['zookeeper'],
            manifest: common(),
          }),
        ),
        'InvalidInput',
        /is not a backup id/,
      );
    }
  });

  test('unpack puts each component where restoreData reads it, replacing what was there', async () => {
    const id = '20261122T074521Z';
    const written = await archive(id);
    const zk = layout.workingFolder('restore', 'zookeeper');
    await writeFile(path.join(zk, 'old.json'), 'from an earlier restore');
    const unpacked = await run(() =>
      acts.unpackArchive({
        op: 'restore',
        backupId: id,
        components: ['zookeeper', 'controller'],
        sha256: written.sha256,
      }),
    );
    assert.deepEqual(
      unpacked.components.map((c) => [c.component, c.folder, c.files]),
      [
        ['zookeeper', zk, 1],
        ['controller', layout.workingFolder('restore', 'controller'), 3],
      ],
    );
    assert.deepEqual(await filesUnder(zk), original);
    assert.deepEqual(
      await filesUnder(layout.workingFolder('restore', 'controller')),
      await filesUnder(layout.workingFolder('backup', 'controller')),
    );
    // Kafka was not asked for: its restore folder is untouched.
    assert.deepEqual(await readdir(layout.workingFolder('restore', 'kafka')), []);

    await refusedWith(
      run(() => acts.unpackArchive({ op: 'restore', backupId: id, components: ['cockroach'] })),
      'InvalidInput',
      /holds no cockroach data \(it holds zookeeper, kafka, controller\)/,
    );
  });

  test('a tampered archive is not unpacked: restore-data keeps what it had', async () => {
    const id = '20261122T074522Z';
    await archive(id);
    await tamper(id, (content) =>
      writeFile(path.join(content, 'zookeeper', 'znodes.json'), '{"znodes":[{"path":"/evil"}]}'),
    );
    const before = await filesUnder(layout.workingFolder('restore', 'zookeeper'));
    await refusedWith(
      run(() => acts.unpackArchive({ op: 'restore', backupId: id, components: ['zookeeper'] })),
      'UnsafeArchive',
      /zookeeper\/znodes\.json has \d+ bytes/,
    );
    assert.deepEqual(await filesUnder(layout.workingFolder('restore', 'zookeeper')), before);
  });

  test('no temp files or scratch folders are left behind', async () => {
    for (const folder of [layout.archiveFolder('backup'), path.join(layout.root, 'restore-data')]) {
      const hidden = (await readdir(folder)).filter((n) => n.startsWith('.'));
      assert.deepEqual(hidden, [], folder);
    }
    assert.ok((await readdir(layout.archiveFolder('backup'))).every((n) => n.endsWith('.zip')));
  });

  test('prune keeps the newest N and the protected one, and sweeps stale leftovers', async () => {
    const folder = layout.archiveFolder('export');
    await mkdir(folder, { recursive: true });
    const ids = [
      '20261101T000000Z',
      '20261102T000000Z-weekly',
      '20261103T000000Z',
      '20261104T000000Z',
      '20261105T000000Z-nightly',
    ];
    for (const id of ids) await writeFile(path.join(folder, `${id}.zip`), id);
    await writeFile(path.join(folder, 'notes.txt'), 'not an archive');
    const staleTemp = path.join(folder, `.20261106T000000Z.zip.123.abc.tmp`);
    const freshTemp = path.join(folder, `.20261107T000000Z.zip.456.def.tmp`);
    await writeFile(staleTemp, 'half');
    await writeFile(freshTemp, 'being written');
    const old = new Date(Date.now() - 7 * 3600 * 1000);
    await utimes(staleTemp, old, old);

    const listed = await run(() => acts.listArchives({ op: 'export' }));
    assert.deepEqual(
      listed.archives.map((a) => a.backupId),
      [...ids].reverse(),
    );

    const pruned = await run(() =>
      acts.pruneArchives({ op: 'export', keep: 2, protect: ['20261102T000000Z-weekly'] }),
    );
    assert.deepEqual(
      pruned.deleted.map((d) => d.backupId),
      ['20261103T000000Z', '20261101T000000Z'],
    );
    assert.deepEqual(pruned.kept, [
      '20261105T000000Z-nightly',
      '20261104T000000Z',
      '20261102T000000Z-weekly',
    ]);
    assert.deepEqual(pruned.swept, [staleTemp]);
    assert.deepEqual((await readdir(folder)).sort(), [
      '.20261107T000000Z.zip.456.def.tmp',
      '20261102T000000Z-weekly.zip',
      '20261104T000000Z.zip',
      '20261105T000000Z-nightly.zip',
      'notes.txt',
    ]);
    await refusedWith(
      run(() => acts.pruneArchives({ op: 'export', keep: 0, protect: [] })),
      'InvalidInput',
      /keep must be an integer/,
    );
  });
  test('a restore test reads every dump back, and refuses one that would not restore', async () => {
    // The fixture's dumps are placeholders: not what ZooKeeper's restore reads.
    const id = '20261122T074512Z-placeholder';
    await archive(id);
    await refusedWith(
      run(() => acts.restoreTest({ op: 'backup', backupId: id })),
      'UnsafeArchive',
      new RegExp(
        `${id}\\.zip on node ${node.replace(/\./g, '\\.')} would not restore zookeeper: .*not a ZooKeeper dump`,
      ),
    );

    // Real dumps, as the adapters write them.
    const zk = layout.workingFolder('backup', 'zookeeper');
    const kafka = layout.workingFolder('backup', 'kafka');
    await writeFile(
      path.join(zk, 'znodes.json'),
      JSON.stringify({
        format: 'clusterguard.zookeeper.znodes/1',
        createdAt: '2026-11-22T07:45:12.000Z',
        source: node,
        znodes: [
          { path: '/app', data: Buffer.from('x').toString('base64') },
          { path: '/app/config', data: Buffer.from('yz').toString('base64') },
        ],
      }),
    );
    await rm(kafka, { recursive: true, force: true });
    await mkdir(kafka, { recursive: true });
    const line = (i: number) =>
      JSON.stringify({
        partition: i % 2,
        offset: String(i),
        timestamp: '1',
        key: null,
        value: 'YQ==',
        headers: [],
      });
    await writeFile(path.join(kafka, 'orders.jsonl'), `${[0, 1, 2].map(line).join('\n')}\n`);
    const topics = (messages: number) =>
      JSON.stringify({
        format: 'clusterguard-kafka-messages/1',
        createdAt: '2026-11-22T07:45:12.000Z',
        clusterId: 'x',
        topics: [
          {
            name: 'orders',
            partitions: 2,
            replicationFactor: 1,
            configs: {},
            messages,
            file: 'orders.jsonl',
          },
        ],
        warnings: [],
      });
    await writeFile(path.join(kafka, 'topics.json'), topics(3));
    const good = '20261122T074513Z-real';
    await archive(good);
    const tested = await run(() => acts.restoreTest({ op: 'backup', backupId: good }));
    assert.deepEqual(
      tested.components.map((c) => [c.component, c.items]),
      [
        ['zookeeper', 2],
        ['kafka', 3],
        ['controller', 3],
      ],
    );

    // A topic file shorter than its manifest says would restore short: refused.
    await writeFile(path.join(kafka, 'topics.json'), topics(4));
    const short = '20261122T074514Z-short';
    await archive(short);
    await refusedWith(
      run(() => acts.restoreTest({ op: 'backup', backupId: short })),
      'UnsafeArchive',
      /would not restore kafka: topic orders: orders\.jsonl holds 3 messages, its manifest says 4/,
    );
  });
});
