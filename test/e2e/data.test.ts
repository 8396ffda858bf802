import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { extractZip, zipFolder } from '../../src/archive/zip.js';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import {
  dataWorkflowId,
  type BackupClusterInput,
  type BackupClusterResult,
  type ExportDataInput,
  type ExportDataResult,
  type ImportDataInput,
  type ImportDataResult,
  type RestoreClusterInput,
  type RestoreClusterResult,
  type VerifyBackupInput,
  type VerifyBackupResult,
} from '../../src/contracts/data-runbooks.js';
import type { Progress } from '../../src/contracts/progress.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper/index.js';
import { startRunbook } from '../../src/client/index.js';
import { failureOf, recordHistory, startStack, type Stack } from '../helpers/stack.js';
import { readAll } from '../helpers/topic.js';
import { progressQuery } from '../../src/contracts/messages.js';

/**
 * The data runbooks end to end on three loopback nodes with real ZooKeeper and Kafka (their
 * own addresses, so this file can run beside the membership e2e file): known znodes and
 * messages are backed up, verified, destroyed and restored identical; retention prunes the
 * older backup; a tampered archive is refused by verifyBackup and by restoreCluster before
 * anything changed. The stack's agents configure no controller folders, so the backups hold
 * ZooKeeper and Kafka only, on the master, with a second copy on the next member.
 */

const [n1, n2, n3] = ['127.0.0.245', '127.0.0.246', '127.0.0.247'] as const;
const nodes = [n1, n2, n3];
const clusterId = 'data';
/** A second, one-node cluster that an export of the first is imported into. */
const other = '127.0.0.248';
const otherClusterId = 'data-b';
const topic = 'data-e2e';
const messageCount = 3000;
/** Znodes under /data-e2e/many, besides the few named ones. */
const manyZnodes = 300;
const log = (msg: string) => console.error(`[data e2e] ${msg}`);

type Runbooks = {
  exportData: [ExportDataInput, ExportDataResult];
  importData: [ImportDataInput, ImportDataResult];
  backupCluster: [BackupClusterInput, BackupClusterResult];
  verifyBackup: [VerifyBackupInput, VerifyBackupResult];
  restoreCluster: [RestoreClusterInput, RestoreClusterResult];
};

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function kafkaOf(hosts: readonly string[]) {
  return new Kafka({
    clientId: 'data-e2e',
    brokers: hosts.map((n) => `${n}:9092`),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 300 },
    connectionTimeout: 3000,
  });
}

/** Every message of `topic` as `partition|key|value`, partition by partition in offset order. */
function readTopic(expected: number, hosts: readonly string[] = nodes): Promise<string[]> {
  return readAll(kafkaOf(hosts), topic, expected);
}

/** ~400 bytes per value, hash-derived so that they compress about as badly as real data. */
const valueOf = (prefix: string, i: number) =>
  `${prefix}-${i}-${createHash('sha512').update(`${prefix}${i}`).digest('base64').repeat(4)}`;

async function produce(count: number, prefix: string): Promise<void> {
  // Idempotent: a retried send on a loaded machine must not write a batch twice.
  const producer = kafkaOf(nodes).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: 10, initialRetryTime: 300 },
  });
  await producer.connect();
  try {
    for (let from = 0; from < count; from += 500) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: Math.min(500, count - from) }, (_, j) => ({
          key: `${prefix}-key-${(from + j) % 17}`,
          value: valueOf(prefix, from + j),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

type ZkClient = Parameters<Parameters<typeof withZooKeeperClient>[2]>[0];

const children = (zk: ZkClient, p: string) =>
  new Promise<string[]>((res, rej) =>
    zk.getChildren(p, (err, names) => (err ? rej(err) : res(names))),
  );

/** The znodes under /data-e2e, each as `path=data`, in tree order. */
const zkTree = (host: string = n2) =>
  withZooKeeperClient(`${host}:2181`, 20_000, async (zk) => {
    const out: string[] = [];
    const walk = async (p: string): Promise<void> => {
      const data = await new Promise<Buffer | undefined>((res, rej) =>
        zk.getData(p, (err, d) => (err ? rej(err) : res(d))),
      );
      out.push(`${p}=${data?.toString('base64') ?? ''}`);
      for (const c of (await children(zk, p)).sort()) await walk(`${p}/${c}`);
    };
    if ((await children(zk, '/')).includes('data-e2e')) await walk('/data-e2e');
    return out;
  });

const zkCreate = (p: string, data: string | Buffer) =>
  withZooKeeperClient(
    `${n3}:2181`,
    10_000,
    (zk) =>
      new Promise<void>((res, rej) =>
        zk.create(p, Buffer.from(data), 0, (err) => (err ? rej(err) : res())),
      ),
  );

const zkRemoveTree = (root: string) =>
  withZooKeeperClient(`${n1}:2181`, 10_000, async (zk) => {
    const remove = async (p: string): Promise<void> => {
      for (const c of await children(zk, p)) await remove(`${p}/${c}`);
      await new Promise<void>((res, rej) => zk.remove(p, -1, (err) => (err ? rej(err) : res())));
    };
    await remove(root);
  });

/** Step ids of a run and how long each took, for the log. */
function stepTimes(p: Progress): string {
  return p.steps
    .map((s) => {
      const ms =
        s.startedAt && s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : NaN;
      return `${s.id} ${Number.isNaN(ms) ? s.status : `${ms} ms`}`;
    })
    .join(', ');
}

describe('data runbooks on loopback nodes with real ZooKeeper and Kafka', () => {
  let stack: Stack;
  let zkBefore: string[];
  let topicBefore: string[];
  let firstBackup: BackupClusterResult;
  /** What earlier tests left that later ones account for. */
  const expect: { keptAs?: string } = {};

  async function start<N extends keyof Runbooks>(
    runbook: N,
    input: Runbooks[N][0],
    workflowId = dataWorkflowId(clusterId),
  ): Promise<WorkflowHandle<(input: Runbooks[N][0]) => Promise<Runbooks[N][1]>>> {
    return stack.client.workflow.start<(input: Runbooks[N][0]) => Promise<Runbooks[N][1]>>(
      runbook,
      { args: [input], taskQueue: orchestratorTaskQueue, workflowId },
    );
  }

  before(async () => {
    const started = Date.now();
    stack = await startStack([...nodes, other], {
      agentEnv: (a) => ({ CG_CLUSTER_ID: a === other ? otherClusterId : clusterId }),
    });
    await Promise.all([
      startRunbook(stack.client, 'bootstrapCluster', { clusterId, nodes }).then((h) => h.result()),
      startRunbook(stack.client, 'bootstrapCluster', {
        clusterId: otherClusterId,
        nodes: [other],
      }).then((h) => h.result()),
    ]);
    log(`stack up and cluster bootstrapped in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    await zkCreate('/data-e2e', 'root');
    for (const name of ['alpha', 'beta', 'gamma']) {
      await zkCreate(`/data-e2e/${name}`, `value of ${name}`);
    }
    await zkCreate('/data-e2e/alpha/nested', Buffer.from([0, 1, 2, 255]));
    await withZooKeeperClient(`${n1}:2181`, 20_000, async (zk) => {
      const create = (p: string, data: string) =>
        new Promise<void>((res, rej) =>
          zk.create(p, Buffer.from(data), 0, (err) => (err ? rej(err) : res())),
        );
      await create('/data-e2e/many', '');
      for (let i = 0; i < manyZnodes; i++) await create(`/data-e2e/many/z${i}`, valueOf('zk', i));
    });
    zkBefore = await zkTree();
    assert.equal(zkBefore.length, 6 + manyZnodes);

    const admin = kafkaOf([n1]).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 3 }],
      // KRaft answers UNKNOWN_TOPIC_OR_PARTITION a moment after a create; the producer retries.
      waitForLeaders: false,
    });
    await admin.disconnect();
    await produce(messageCount, 'orig');
    topicBefore = await readTopic(messageCount);
    assert.equal(topicBefore.length, messageCount);
  });
  after(async () => {
    await stack?.close();
  });
  beforeEach(async () => {
    for (const id of [clusterId, otherClusterId]) {
      const handle = stack.client.workflow.getHandle(dataWorkflowId(id));
      const running = await handle.describe().then(
        (d) => d.status.name === 'RUNNING',
        () => false,
      );
      if (running) await handle.terminate('data e2e: an earlier test failed');
    }
  });

  /** A request to a node agent's HTTP API, with the cluster token unless told otherwise. */
  const agent = (
    node: string,
    route: string,
    init: RequestInit & { token?: string | null } = {},
  ): Promise<Response> => {
    const { token = stack.token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    return fetch(`http://${node}:${stack.agentPort}${route}`, { ...rest, headers });
  };

  test(
    'backup: refused under another id; a dry run plans; the backup is archived and verified',
    { timeout: 300_000 },
    async () => {
      const foreign = await start(
        'backupCluster',
        { clusterId, master: n1 },
        `cg/${clusterId}/elsewhere`,
      );
      const refusal = await failureOf(foreign);
      assert.equal(refusal.type, 'InvalidInput');
      assert.match(refusal.message, /must run as cg\/data\/data/);

      // Defaults: the master's enabled middleware; no member configures controller folders.
      const plan = await (
        await start(
          'backupCluster',
          { clusterId, master: n2, dryRun: true },
          `cg/${clusterId}/plan`,
        )
      ).result();
      assert.equal(plan.master, n1, 'the master is found from any member');
      assert.deepEqual(plan.plan, [{ node: n1, components: ['zookeeper', 'kafka'] }]);
      assert.deepEqual(plan.archives, []);
      assert.deepEqual(
        plan.steps.map((s) => s.id),
        [
          `backup:${n1}:zookeeper`,
          `backup:${n1}:kafka`,
          `archive:${n1}`,
          `verify:${n1}`,
          `copy:${n2}`,
        ],
      );

      const started = Date.now();
      const handle = await start('backupCluster', {
        clusterId,
        master: n1,
        middleware: ['zookeeper', 'kafka'],
        label: 'e2e',
      });
      const result = await handle.result();
      const took = Date.now() - started;
      firstBackup = result;
      assert.match(result.backupId, /^\d{8}T\d{6}Z-e2e$/);
      assert.deepEqual(result.members, nodes);
      assert.equal(result.archives.length, 1);
      const [archive] = result.archives;
      assert.ok(archive);
      assert.equal(archive.node, n1);
      assert.equal(
        archive.file,
        path.join(stack.layout(n1).archiveFolder('backup'), `${result.backupId}.zip`),
      );
      const bytes = await readFile(archive.file);
      assert.equal(sha256(bytes), archive.sha256);
      assert.equal(bytes.length, archive.bytes);
      // The second copy, on the first member that holds no archive of its own.
      assert.deepEqual(
        result.copies?.map((c) => [c.node, c.from, c.sha256]),
        [[n2, n1, archive.sha256]],
      );
      assert.deepEqual(await readdir(stack.layout(n2).archiveFolder('backup')), [
        `${result.backupId}.zip`,
      ]);
      assert.deepEqual(
        await readdir(stack.layout(n3).archiveFolder('backup')),
        [],
        'n3 holds nothing',
      );
      const manifest = JSON.parse(
        await readFile(path.join(stack.layout(n1).root, 'backup-data', 'manifest.json'), 'utf8'),
      ) as { files: { path: string }[]; members: string[]; versions?: Record<string, string> };
      assert.deepEqual(manifest.members, nodes);
      assert.ok(manifest.files.some((f) => f.path === 'zookeeper/znodes.json'));
      assert.ok(manifest.files.some((f) => f.path === `kafka/${topic}.jsonl`));
      assert.ok(manifest.versions?.zookeeper && manifest.versions.kafka, 'versions recorded');
      const progress = await handle.query(progressQuery);
      log(
        `backupCluster ${result.backupId}: ${took} ms; archive ${archive.bytes} bytes, ` +
          `${archive.entries} entries; steps: ${stepTimes(progress)}`,
      );
      await recordHistory(stack, handle.workflowId, 'backup-cluster');

      const verify = await start('verifyBackup', {
        clusterId,
        master: n1,
        backupId: result.backupId,
        restoreTest: true,
      });
      const verified = await verify.result();
      // The restore test read every dump back: each znode under /data-e2e (and ZooKeeper's
      // own), every message of the topic.
      const readBack = Object.fromEntries(
        (verified.restoreTest?.components ?? []).map((c) => [c.component, c.items]),
      );
      assert.equal(verified.restoreTest?.node, n1);
      assert.ok((readBack.zookeeper ?? 0) >= zkBefore.length, JSON.stringify(readBack));
      assert.equal(readBack.kafka, messageCount);
      assert.deepEqual(
        verified.nodes.map((v) => [v.node, v.present]),
        [
          [n1, true],
          [n2, true],
          [n3, false],
        ],
      );
      assert.equal(verified.nodes[0]?.archive?.sha256, archive.sha256);
      log(
        `verifyBackup: ${verified.nodes[0]?.archive?.files} files, ` +
          `${verified.nodes[0]?.archive?.dataBytes} bytes uncompressed`,
      );
      assert.deepEqual(verified.backup.plan, result.plan);
      await recordHistory(stack, verify.workflowId, 'verify-backup');
    },
  );

  test('destroy the data, restore it, read it back identical', { timeout: 300_000 }, async () => {
    assert.ok(firstBackup, 'the backup test ran');
    await zkRemoveTree('/data-e2e/beta');
    await zkRemoveTree('/data-e2e/many');
    await zkCreate('/data-e2e/intruder', 'not in the backup');
    await produce(50, 'extra');
    assert.notDeepEqual(await zkTree(), zkBefore);
    assert.equal((await readTopic(messageCount + 50)).length, messageCount + 50);

    const started = Date.now();
    const handle = await start('restoreCluster', {
      clusterId,
      master: n1,
      backupId: firstBackup.backupId,
    });
    const result = await handle.result();
    const took = Date.now() - started;
    assert.deepEqual(result.plan, [{ node: n1, components: ['zookeeper', 'kafka'] }]);
    assert.deepEqual(
      result.restored.map((r) => `${r.node}:${r.component}`),
      [`${n1}:zookeeper`, `${n1}:kafka`],
    );
    const progress = await handle.query(progressQuery);
    log(`restoreCluster ${firstBackup.backupId}: ${took} ms; steps: ${stepTimes(progress)}`);
    assert.ok(progress.steps.some((s) => s.id === `health:${n3}` && s.status === 'completed'));

    assert.deepEqual(await zkTree(), zkBefore);
    assert.deepEqual(await readTopic(messageCount), topicBefore);

    // What the restore replaced was kept: a verified backup holding the destroyed state.
    assert.match(result.keptAs ?? '', /^\d{8}T\d{6}Z-before-restore$/);
    expect.keptAs = result.keptAs;
    const kept = path.join(stack.layout(n1).archiveFolder('backup'), `${result.keptAs}.zip`);
    const look = path.join(stack.dir, 'kept');
    await extractZip(kept, look);
    const keptTree = await readFile(path.join(look, 'zookeeper', 'znodes.json'), 'utf8');
    assert.ok(keptTree.includes('"/data-e2e/intruder"'), 'the kept backup holds the live data');
    assert.ok(!keptTree.includes('"/data-e2e/beta"'), 'as it was before the restore');
    await rm(look, { recursive: true, force: true });
    await recordHistory(stack, handle.workflowId, 'restore-cluster');
  });

  test(
    'retention prunes the older backup; a tampered archive is refused before anything changed',
    { timeout: 300_000 },
    async () => {
      assert.ok(firstBackup, 'the backup test ran');
      const started = Date.now();
      const second = await (
        await start('backupCluster', { clusterId, master: n1, keep: 1 })
      ).result();
      log(
        `backupCluster ${second.backupId} (keep 1): ${Date.now() - started} ms, ${second.archives[0]?.bytes} bytes`,
      );
      // The restore's keep-aside backup is a backup like any other: older, so pruned too.
      assert.deepEqual(
        second.pruned.map((p) => `${p.node}:${p.backupId}`).sort(),
        [
          `${n1}:${firstBackup.backupId}`,
          `${n2}:${firstBackup.backupId}`,
          expect.keptAs ? `${n1}:${expect.keptAs}` : '',
        ]
          .filter(Boolean)
          .sort(),
      );
      assert.deepEqual(await readdir(stack.layout(n1).archiveFolder('backup')), [
        `${second.backupId}.zip`,
      ]);

      // Same names, other content: the zip itself is sound, the manifest tells.
      const file = path.join(stack.layout(n1).archiveFolder('backup'), `${second.backupId}.zip`);
      const work = path.join(stack.dir, 'tamper');
      await extractZip(file, work);
      const dump = path.join(work, 'zookeeper', 'znodes.json');
      // Same size, other bytes: only the hash can tell (the dump keeps data in base64).
      const text = await readFile(dump, 'utf8');
      const evil = text.replace(
        Buffer.from('value of alpha').toString('base64'),
        Buffer.from('value of evil!').toString('base64'),
      );
      assert.notEqual(evil, text);
      assert.equal(evil.length, text.length);
      await writeFile(dump, evil);
      await zipFolder(work, file);
      await rm(work, { recursive: true, force: true });

      const verify = await start('verifyBackup', {
        clusterId,
        master: n1,
        backupId: second.backupId,
      });
      const verifyFailure = await failureOf(verify);
      assert.equal(verifyFailure.type, 'UnsafeArchive');
      assert.match(verifyFailure.message, /zookeeper\/znodes\.json has sha256/);
      assert.ok(verifyFailure.message.includes(file), verifyFailure.message);

      // Live data written after the backup: a refused restore must leave it.
      await zkCreate('/data-e2e/after-backup', 'live');
      const zkLive = await zkTree();
      const handle = await start('restoreCluster', {
        clusterId,
        master: n1,
        backupId: second.backupId,
      });
      const failure = await failureOf(handle);
      assert.equal(failure.type, 'UnsafeArchive');
      assert.match(
        failure.message,
        /refused backup .*; nothing was changed: 127\.0\.0\.245: .*zookeeper\/znodes\.json has sha256/,
      );
      const progress = await handle.query(progressQuery);
      assert.deepEqual(
        progress.steps.map((s) => s.id).sort(),
        [`check:${n1}`, `check:${n2}`, `check:${n3}`, `read:${n1}`],
        'no unpack or restore step was planned',
      );
      assert.deepEqual(await zkTree(), zkLive);
      assert.deepEqual(await readTopic(messageCount), topicBefore);
      await recordHistory(stack, handle.workflowId, 'restore-cluster-refused');

      const none = await start('verifyBackup', {
        clusterId,
        master: n1,
        backupId: '20200101T000000Z',
      });
      assert.match((await failureOf(none)).message, /no member has backup 20200101T000000Z/);
    },
  );
  test(
    'export over the agent API, download it, upload it to a fresh cluster, import: the data arrives identical',
    { timeout: 300_000 },
    async () => {
      const zkNow = await zkTree();
      const topicNow = await readTopic(messageCount);

      // Old callers of the guard service keep working: the seed's endpoint starts the runbook.
      assert.equal(
        (await agent(n2, '/v1/cluster/data/actions/export', { method: 'POST', token: null }))
          .status,
        401,
      );
      const badInput = await agent(n2, '/v1/cluster/data/actions/export', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ label: '../etc' }),
      });
      assert.equal(badInput.status, 400);
      assert.match(((await badInput.json()) as { error: string }).error, /label/);

      let started = Date.now();
      const answer = await agent(n2, '/v1/cluster/data/actions/export', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ label: 'move' }),
      });
      assert.equal(answer.status, 202);
      const { workflowId, runId } = (await answer.json()) as { workflowId: string; runId: string };
      assert.equal(workflowId, dataWorkflowId(clusterId));
      const exportHandle = stack.client.workflow.getHandle<
        (input: ExportDataInput) => Promise<ExportDataResult>
      >(workflowId, runId);
      const exported = await exportHandle.result();
      const exportMs = Date.now() - started;
      assert.equal(exported.master, n1, 'started on a member, run with the master');
      assert.deepEqual(exported.plan, [{ node: n1, components: ['zookeeper', 'kafka'] }]);
      const [archive] = exported.archives;
      assert.ok(archive);
      await recordHistory(stack, workflowId, 'export-data');

      const route = `/v1/cluster/data/archives/export/${exported.exportId}.zip`;
      assert.equal(
        (await agent(n1, route, { token: 'not-the-token-of-this-cluster' })).status,
        401,
      );
      assert.equal(
        (await agent(n1, '/v1/cluster/data/archives/export/..%2F..%2Fconf%2Fcluster.json')).status,
        400,
      );
      const download = await agent(n1, route);
      assert.equal(download.status, 200);
      const bytes = Buffer.from(await download.arrayBuffer());
      assert.equal(sha256(bytes), archive.sha256, 'the download is the archive, byte for byte');
      const listed = (await (await agent(n1, '/v1/cluster/data/archives/export')).json()) as {
        archives: { id: string; bytes: number }[];
      };
      assert.deepEqual(
        listed.archives.map((a) => a.id),
        [exported.exportId],
      );

      // Uploads that are not clusterguard archives are refused and leave nothing behind.
      const junk = await agent(other, '/v1/cluster/data/actions/import', {
        method: 'POST',
        headers: { 'content-type': 'application/zip' },
        body: bytes.subarray(0, Math.floor(bytes.length / 2)),
      });
      assert.equal(junk.status, 422);
      assert.match(((await junk.json()) as { error: string }).error, /not a readable zip/);
      assert.deepEqual(await readdir(stack.layout(other).archiveFolder('import')), []);

      started = Date.now();
      const upload = await agent(other, '/v1/cluster/data/actions/import', {
        method: 'POST',
        headers: { 'content-type': 'application/zip' },
        body: bytes,
      });
      assert.equal(upload.status, 202, await upload.clone().text());
      const imp = (await upload.json()) as { workflowId: string; runId: string };
      assert.equal(imp.workflowId, dataWorkflowId(otherClusterId));
      const imported = await stack.client.workflow
        .getHandle<(input: ImportDataInput) => Promise<ImportDataResult>>(imp.workflowId, imp.runId)
        .result();
      const importMs = Date.now() - started;
      assert.equal(imported.sourceClusterId, clusterId);
      assert.equal(imported.node, other);
      assert.deepEqual(
        imported.imported.map((i) => i.component),
        ['zookeeper', 'kafka'],
      );
      assert.match(imported.keptAs ?? '', /-before-import$/);
      await recordHistory(stack, imp.workflowId, 'import-data');

      assert.deepEqual(await zkTree(other), zkNow);
      assert.deepEqual(await readTopic(messageCount, [other]), topicNow);
      // The same upload again is refused: an archive name names one archive.
      const again = await agent(other, '/v1/cluster/data/actions/import', {
        method: 'POST',
        headers: { 'content-type': 'application/zip' },
        body: bytes,
      });
      assert.equal(again.status, 409);
      log(
        `exportData ${exported.exportId}: ${exportMs} ms, ${archive.bytes} bytes; ` +
          `importData into ${otherClusterId}: ${importMs} ms`,
      );
    },
  );
});
