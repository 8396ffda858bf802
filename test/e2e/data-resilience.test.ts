import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import {
  createBackupSchedule,
  deleteBackupSchedule,
  describeBackupSchedule,
  startRunbook,
  triggerBackupSchedule,
  type ScheduledBackupResult,
} from '../../src/client/index.js';
import type { BackupClusterResult } from '../../src/contracts/data-runbooks.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper/index.js';
import { startStack, waitForProgress, type Stack } from '../helpers/stack.js';

/**
 * The data runbooks' promise under faults, on one ZooKeeper cluster of three loopback nodes:
 * a backup is kept on two members and restores after the master's archive folder is deleted;
 * backup, restore and import each survive the orchestrator SIGKILLed mid-run and leave the
 * znodes exact; a schedule produces a backup that verifyBackup passes. Kafka's side of the
 * same runbooks is in data.test.ts.
 */
const nodes = ['127.0.0.241', '127.0.0.242', '127.0.0.243'];
const [n1, n2, n3] = nodes as [string, string, string];
const clusterId = 'resilience';
const root = '/resilience';
const log = (msg: string) => console.error(`[data-resilience e2e] ${msg}`);
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

/** Removes the subtree at `p` (through n1): the data now differs from the backup. */
const damage = (p: string) =>
  zk(n1, async (c) => {
    const remove = async (q: string): Promise<void> => {
      for (const k of await call<string[]>((cb) => c.getChildren(q, cb))) await remove(`${q}/${k}`);
      await call<void>((cb) => c.remove(q, -1, cb));
    };
    await remove(p);
  });

describe('data runbooks under faults: copies, SIGKILLed orchestrator, schedules', () => {
  let stack: Stack;
  let before_: string[];

  /** verifyBackup of `backupId`, every dump read back too (restoreTest). */
  const verify = async (backupId: string) =>
    (
      await startRunbook(stack.client, 'verifyBackup', {
        clusterId,
        master: n1,
        backupId,
        restoreTest: true,
      })
    ).result();

  /** SIGKILLs the orchestrator once the run's `step` has begun and restarts it: mid-run. */
  async function killedMidRun<T>(
    handle: WorkflowHandle & { result(): Promise<T> },
    step: string,
  ): Promise<T> {
    await waitForProgress(handle, (p) =>
      p.steps.some((s) => s.id.startsWith(step) && s.status !== 'pending'),
    );
    await stack.killOrchestrator();
    const { status } = await handle.describe();
    assert.equal(status.name, 'RUNNING', `${handle.workflowId} was still running at the kill`);
    await sleep(500);
    await stack.startOrchestrator();
    return (await handle.result()) as T;
  }

  before(async () => {
    const started = Date.now();
    stack = await startStack(nodes, { enabled: ['zookeeper'] });
    await (await startRunbook(stack.client, 'bootstrapCluster', { clusterId, nodes })).result();
    await zk(n2, async (c) => {
      const create = (p: string, d: string) =>
        call<string>((cb) => c.create(p, Buffer.from(d), 0, cb));
      await create(root, 'root');
      for (const group of ['a', 'b', 'c']) {
        await create(`${root}/${group}`, `group ${group}`);
        for (let i = 0; i < 60; i++) await create(`${root}/${group}/z${i}`, `${group}${i}`);
      }
    });
    before_ = await tree(n3);
    assert.equal(before_.length, 1 + 3 * 61);
    log(`stack up, bootstrapped, ${before_.length} znodes in ${Date.now() - started} ms`);
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

    await damage(`${root}/b`);
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

  test('backup, restore and import each survive the orchestrator SIGKILLed mid-run', async () => {
    const backupHandle = await startRunbook(stack.client, 'backupCluster', {
      clusterId,
      master: n1,
      label: 'killed',
    });
    const backup = await killedMidRun(backupHandle, `backup:${n1}:`);
    const verified = await verify(backup.backupId);
    assert.deepEqual(
      verified.nodes.map((v) => [v.node, v.present]),
      [
        [n1, true],
        [n2, true],
        [n3, false],
      ],
    );

    await damage(`${root}/a`);
    const restoreHandle = await startRunbook(stack.client, 'restoreCluster', {
      clusterId,
      master: n1,
      backupId: backup.backupId,
    });
    await killedMidRun(restoreHandle, `unpack:${n1}`);
    assert.deepEqual(await tree(n3), before_, 'restored exactly');

    const exported = await (
      await startRunbook(stack.client, 'exportData', { clusterId, master: n1, label: 'move' })
    ).result();
    const importFolder = stack.layout(n1).archiveFolder('import');
    await mkdir(importFolder, { recursive: true });
    await copyFile(
      exported.archives[0]?.file ?? '',
      path.join(importFolder, `${exported.exportId}.zip`),
    );
    await damage(`${root}/c`);
    const importHandle = await startRunbook(stack.client, 'importData', {
      clusterId,
      master: n1,
      archive: exported.exportId,
    });
    const imported = await killedMidRun(importHandle, `unpack:${n1}`);
    assert.deepEqual(
      imported.imported.map((i) => i.component),
      ['zookeeper'],
    );
    assert.deepEqual(await tree(n3), before_, 'imported exactly');
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
