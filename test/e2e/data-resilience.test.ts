import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createBackupSchedule,
  deleteBackupSchedule,
  describeBackupSchedule,
  startRunbook,
  triggerBackupSchedule,
  type ScheduledBackupResult,
} from '../../src/client/index.js';
import type { BackupClusterResult, ExportDataResult } from '../../src/contracts/data-runbooks.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper/index.js';
import { agentKilledMidStep, killOrchestrator, type AgentKill } from '../helpers/mid-run.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { TestTopic } from '../helpers/topic.js';

/**
 * The data runbooks' promise under faults, on two clusters of loopback nodes:
 * - `resilience`, three nodes running ZooKeeper (127.0.0.241–.243): a backup is kept on two
 *   members and restores after the master's archive folder is deleted; a schedule produces a
 *   backup that verifyBackup passes;
 * - `resilience-kafka`, one node running ZooKeeper and Kafka (127.0.0.244): backup, restore,
 *   export and import each survive, in one run, the agent that does the work SIGKILLed in the
 *   middle of its Kafka step and then the orchestrator SIGKILLed while that step waits to be
 *   tried again, each restarted. After every restore and import the znodes are exact and every message of the
 *   archive reads back once, no more, no fewer. One node keeps the Kafka cluster's start short;
 *   the agent's part in a data runbook is the same on a cluster of any size (the master does it).
 */
const nodes = ['127.0.0.241', '127.0.0.242', '127.0.0.243'];
const [n1, n2, n3] = nodes as [string, string, string];
const clusterId = 'resilience';
const k1 = '127.0.0.244';
const kafkaCluster = { clusterId: 'resilience-kafka', master: k1 };
const root = '/resilience';
const log = (msg: string) => console.error(`[data-resilience e2e] ${msg}`);
/** Enough messages that writing them back takes the agent a moment: a kill lands inside. */
const messageCount = 6000;
const topic = new TestTopic('resilience', [k1]);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

type ZkClient = Parameters<Parameters<typeof withZooKeeperClient>[2]>[0];
const call = <T>(fn: (cb: (err: Error | null, v: T) => void) => void) =>
  new Promise<T>((res, rej) => fn((err, v) => (err ? rej(err) : res(v))));
const zk = <T>(host: string, body: (c: ZkClient) => Promise<T>) =>
  withZooKeeperClient(`${host}:2181`, 20_000, body);

/** Every znode under the test's root as `path=base64`, in tree order, read on `host`. */
const tree = (host: string) =>
  zk(host, async (c) => {
    const out: string[] = [];
    const walk = async (p: string): Promise<void> => {
      const data = await call<Buffer | undefined>((cb) => c.getData(p, cb));
      out.push(`${p}=${data?.toString('base64') ?? ''}`);
      const kids = await call<string[]>((cb) => c.getChildren(p, cb));
      for (const k of kids.sort()) await walk(`${p}/${k}`);
    };
    const top = await call<string[]>((cb) => c.getChildren('/', cb));
    if (top.includes(root.slice(1))) await walk(root);
    return out;
  });

/** The test's znodes: three groups of sixty under the root. */
const fill = (host: string) =>
  zk(host, async (c) => {
    const create = (p: string, d: string) =>
      call<string>((cb) => c.create(p, Buffer.from(d), 0, cb));
    await create(root, 'root');
    for (const group of ['a', 'b', 'c']) {
      await create(`${root}/${group}`, `group ${group}`);
      for (let i = 0; i < 60; i++) await create(`${root}/${group}/z${i}`, `${group}${i}`);
    }
  });

/** Removes the subtree at `p` through `host`: the data now differs from the backup. */
const damage = (host: string, p: string) =>
  zk(host, async (c) => {
    const remove = async (q: string): Promise<void> => {
      for (const k of await call<string[]>((cb) => c.getChildren(q, cb))) await remove(`${q}/${k}`);
      await call<void>((cb) => c.remove(q, -1, cb));
    };
    await remove(p);
  });

describe('data runbooks under faults: copies, SIGKILLed orchestrator and agent, schedules', () => {
  let stack: Stack;
  let before_: string[];
  let topicBefore: string[];

  /** verifyBackup of `backupId`, every dump read back too (restoreTest). */
  const verify = async (backupId: string, cluster = { clusterId, master: n1 }) =>
    (
      await startRunbook(stack.client, 'verifyBackup', { ...cluster, backupId, restoreTest: true })
    ).result();

  /** The Kafka cluster's znodes and topic are what they were at the start. */
  async function assertExact(what: string): Promise<void> {
    assert.deepEqual(await tree(k1), before_, `${what}: the znodes`);
    const read = await topic.read(messageCount);
    assert.equal(read.length, messageCount, `${what}: every message once`);
    assert.deepEqual(read, topicBefore, `${what}: the messages`);
  }

  /** What a restore must repair: a group of znodes gone and 100 messages more. */
  async function damageForRestore(group: string): Promise<void> {
    await damage(k1, `${root}/${group}`);
    await topic.produce(100, 'extra');
  }

  /**
   * The export's archive in the import folder, a group of znodes gone and the topic deleted:
   * the import must bring back exactly the archive's messages, each once.
   */
  async function prepareImport(exported: ExportDataResult, group: string): Promise<void> {
    const importFolder = stack.layout(k1).archiveFolder('import');
    await mkdir(importFolder, { recursive: true });
    await copyFile(
      exported.archives[0]?.file ?? '',
      path.join(importFolder, `${exported.exportId}.zip`),
    );
    await damage(k1, `${root}/${group}`);
    await topic.delete();
  }

  /** Resolves once the topic holds some but not all of its messages again: mid-write. */
  const partWritten = async (stillRunning: () => Promise<boolean>) => {
    const inside = await topic.waitForTotal(
      (t) => t > 0 && t < messageCount,
      async () => !(await stillRunning()),
    );
    assert.ok(inside, 'the step ended before the topic was part written: no kill inside it');
  };

  const report = (step: string, kill: AgentKill<unknown>) => {
    const resumed = kill.agentLines.find((l) => l.includes('resumed topic'));
    log(
      `${step}: agent SIGKILLed mid-step; done in attempt ${kill.attempt}, ` +
        `${kill.recoveredMs} ms after the kill${resumed ? `; ${resumed}` : ''}`,
    );
  };

  before(async () => {
    const started = Date.now();
    stack = await startStack([...nodes, k1], {
      agentEnv: (a) =>
        a === k1
          ? { CG_CLUSTER_ID: kafkaCluster.clusterId, CG_MIDDLEWARE__ENABLED: 'zookeeper,kafka' }
          : { CG_CLUSTER_ID: clusterId, CG_MIDDLEWARE__ENABLED: 'zookeeper' },
    });
    await Promise.all([
      startRunbook(stack.client, 'bootstrapCluster', { clusterId, nodes }).then((h) => h.result()),
      startRunbook(stack.client, 'bootstrapCluster', {
        clusterId: kafkaCluster.clusterId,
        nodes: [k1],
      }).then((h) => h.result()),
    ]);
    await Promise.all([fill(n2), fill(k1)]);
    before_ = await tree(n3);
    assert.equal(before_.length, 1 + 3 * 61);
    assert.deepEqual(await tree(k1), before_);
    await topic.create(3, 1);
    await topic.produce(messageCount, 'orig');
    topicBefore = await topic.read(messageCount);
    assert.equal(topicBefore.length, messageCount);
    log(
      `stack up, both clusters bootstrapped, ${before_.length} znodes and ${messageCount} messages in ${Date.now() - started} ms`,
    );
  });
  after(async () => {
    await stack?.close();
  });

  test('a backup is kept on two members and restores from the copy when the master lost its own', async () => {
    const backup: BackupClusterResult = await (
      await startRunbook(stack.client, 'backupCluster', { clusterId, master: n1, label: 'copy' })
    ).result();
    const [original] = backup.archives;
    assert.equal(original?.node, n1);
    assert.deepEqual(
      backup.copies?.map((c) => [c.node, c.from, c.sha256]),
      [[n2, n1, original.sha256]],
    );
    const copyFile_ = path.join(stack.layout(n2).archiveFolder('backup'), `${backup.backupId}.zip`);
    assert.equal(sha256(await readFile(copyFile_)), original.sha256, 'the copy is byte for byte');
    assert.deepEqual(await readdir(stack.layout(n3).archiveFolder('backup')), []);

    // The master's archive folder is lost: verify and restore use the copy on n2.
    await rm(stack.layout(n1).archiveFolder('backup'), { recursive: true, force: true });
    const verified = await verify(backup.backupId);
    assert.equal(verified.restoreTest?.node, n2);
    assert.ok((verified.restoreTest?.components[0]?.items ?? 0) >= before_.length);

    await damage(n1, `${root}/b`);
    assert.notDeepEqual(await tree(n3), before_);
    const restored = await (
      await startRunbook(stack.client, 'restoreCluster', {
        clusterId,
        master: n1,
        backupId: backup.backupId,
      })
    ).result();
    assert.deepEqual(restored.plan, [{ node: n2, components: ['zookeeper'] }]);
    assert.deepEqual(await tree(n3), before_);
  });

  test('backup, restore, export and import each survive their agent and the orchestrator SIGKILLed mid-run', async () => {
    const kafkaStep = (op: string) => `${op}:${k1}:kafka`;
    /**
     * The agent killed inside the Kafka step, then, while that step waits to be tried again,
     * the orchestrator: both restarted, the run must complete.
     */
    async function bothKilled<T>(
      handle: Parameters<typeof agentKilledMidStep<T>>[1],
      op: string,
      inside?: (stillRunning: () => Promise<boolean>) => Promise<void>,
    ): Promise<T> {
      const kill = await agentKilledMidStep(stack, handle, kafkaStep(op), {
        ...(inside ? { inside } : {}),
        meanwhile: () => killOrchestrator(stack, handle),
      });
      report(kafkaStep(op), kill);
      return kill.result;
    }

    const backup = await bothKilled(
      await startRunbook(stack.client, 'backupCluster', { ...kafkaCluster, label: 'killed' }),
      'backup',
    );
    const verified = await verify(backup.backupId, kafkaCluster);
    assert.deepEqual(
      verified.nodes.map((v) => [v.node, v.present]),
      [[k1, true]],
    );
    const items = verified.restoreTest?.components.find((c) => c.component === 'kafka')?.items;
    assert.equal(items, messageCount, 'the backup holds every message');

    await damageForRestore('a');
    await bothKilled(
      await startRunbook(stack.client, 'restoreCluster', {
        ...kafkaCluster,
        backupId: backup.backupId,
      }),
      'restore',
      partWritten,
    );
    await assertExact('restored');

    const exported = await bothKilled(
      await startRunbook(stack.client, 'exportData', { ...kafkaCluster, label: 'move' }),
      'export',
    );
    await prepareImport(exported, 'c');
    const imported = await bothKilled(
      await startRunbook(stack.client, 'importData', {
        ...kafkaCluster,
        archive: exported.exportId,
      }),
      'import',
      partWritten,
    );
    assert.deepEqual(
      imported.imported.map((i) => i.component),
      ['zookeeper', 'kafka'],
    );
    await assertExact('imported');
  });

  test('a schedule produces a backup that verifyBackup passes', async () => {
    await createBackupSchedule(stack.client, {
      every: '1h',
      input: { clusterId, master: n1, label: 'scheduled' },
    });
    try {
      await triggerBackupSchedule(stack.client, clusterId, 'default');
      let workflowId: string | undefined;
      for (let i = 0; i < 300 && !workflowId; i++) {
        const info = await describeBackupSchedule(stack.client, clusterId, 'default');
        workflowId = info.recent[0]?.workflowId;
        if (!workflowId) await sleep(200);
      }
      assert.ok(workflowId, 'the schedule fired');
      const fired = (await stack.client.workflow
        .getHandle(workflowId)
        .result()) as ScheduledBackupResult;
      const { backup } = fired;
      assert.match(backup.backupId, /-scheduled$/);
      const verified = await verify(backup.backupId);
      assert.equal(verified.backup.workflowId, `cg/${clusterId}/data`);
      assert.ok((verified.restoreTest?.components[0]?.items ?? 0) >= before_.length);
    } finally {
      await deleteBackupSchedule(stack.client, clusterId, 'default');
    }
  });
});
