import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../src/client/index.js';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import {
  admissionStateQuery,
  admissionWorkflowId,
  type AdmissionState,
} from '../../src/contracts/admission.js';
import { bundleWorkflowId } from '../../src/contracts/bundles.js';
import { membershipWorkflowId } from '../../src/contracts/membership-runbooks.js';
import { pauseSignal, progressQuery } from '../../src/contracts/messages.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper/index.js';
import {
  failureOf,
  recordHistory,
  startStack,
  waitForProgress,
  type Stack,
} from '../helpers/stack.js';

/**
 * Cluster-wide admission and quiesce (docs/design.md "Admission") on two loopback nodes with
 * real ZooKeeper, a real Temporal server and the orchestrator as a process of its own: a restore
 * and a rollout onto a leaving node are refused while a decommission holds the cluster, and
 * change nothing; the admission holds across a SIGKILL of the orchestrator; a terminated holder
 * is dropped, and the restore queued behind it (`waitForCluster`) then runs, between a stop and
 * a start of the webapps on every node.
 */

const [n1, n2] = ['127.0.0.181', '127.0.0.182'] as const;
const nodes = [n1, n2];
const clusterId = 'admit';
const log = (msg: string) => console.error(`[admission e2e] ${msg}`);
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
/** A bundle that was never uploaded: a rollout refused at admission never looks for it. */
const bundleSha = sha256('no such bundle');

describe('cluster-wide admission on loopback nodes with real ZooKeeper', () => {
  let stack: Stack;
  let logs: string;
  let backupId: string;
  const decommissionId = membershipWorkflowId(clusterId);
  let decommission: WorkflowHandle;
  let queuedRestore: WorkflowHandle;

  const admission = () =>
    stack.client.workflow.getHandle(admissionWorkflowId(clusterId)).query(admissionStateQuery);

  /** Polls the admission workflow's state until `ok` holds (bounded; never a speed check). */
  async function admissionUntil(ok: (s: AdmissionState) => boolean): Promise<AdmissionState> {
    const deadline = Date.now() + 120_000;
    let last: AdmissionState | undefined;
    while (Date.now() < deadline) {
      last = await admission().catch(() => undefined);
      if (last && ok(last)) return last;
      await sleep(300);
    }
    throw new Error(`admission state not reached; last: ${JSON.stringify(last)}`);
  }

  /** Every cluster.json, the znodes under /adm and the archive folders, hashed. */
  async function snapshot(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const n of nodes) {
      const layout = stack.layout(n);
      out[`${n} cluster.json`] = sha256(await readFile(layout.clusterFile));
      const { root } = layout;
      for (const folder of ['backup-data-archive', 'restore-data', 'restore-data-archive']) {
        const names = await readdir(path.join(root, folder), { recursive: true }).catch(() => []);
        out[`${n} ${folder}`] = names.sort().join(',');
      }
    }
    out.znodes = await withZooKeeperClient(`${n1}:2181`, 20_000, async (zk) => {
      const lines: string[] = [];
      const walk = async (p: string): Promise<void> => {
        const data = await new Promise<Buffer | undefined>((res, rej) =>
          zk.getData(p, (err, d) => (err ? rej(err) : res(d))),
        );
        lines.push(`${p}=${data?.toString('base64') ?? ''}`);
        const kids = await new Promise<string[]>((res, rej) =>
          zk.getChildren(p, (err, k) => (err ? rej(err) : res(k))),
        );
        for (const k of kids.sort()) await walk(`${p}/${k}`);
      };
      await walk('/adm');
      return lines.join('\n');
    });
    return out;
  }

  const rollout = (id: string, input: Record<string, unknown>) =>
    stack.client.workflow.start('rolloutBundle', {
      taskQueue: orchestratorTaskQueue,
      workflowId: bundleWorkflowId(clusterId, id),
      args: [{ clusterId, sha256: bundleSha, ...input }],
    });

  before(async () => {
    const started = Date.now();
    logs = await mkdtemp(path.join(os.tmpdir(), 'cg-admission-webapps-'));
    // The orchestrator (a child process) checks its holders every 2 s instead of every 30 s.
    process.env.CG_ADMISSION__CHECK_SECONDS = '2';
    const command = (n: string, action: string) =>
      JSON.stringify(['/bin/sh', '-c', `echo ${action} >> ${path.join(logs, `${n}.log`)}`]);
    stack = await startStack(nodes, {
      enabled: ['zookeeper'],
      agentEnv: (n) => ({
        CG_CLUSTER_ID: clusterId,
        CG_WEBAPPS__STOP_COMMAND: command(n, 'stop'),
        CG_WEBAPPS__START_COMMAND: command(n, 'start'),
      }),
    });
    await startRunbook(stack.client, 'bootstrapCluster', { clusterId, nodes }).then((h) =>
      h.result(),
    );
    await withZooKeeperClient(`${n1}:2181`, 20_000, async (zk) => {
      for (const [p, v] of [
        ['/adm', 'root'],
        ['/adm/a', 'alpha'],
        ['/adm/b', 'beta'],
      ] as const) {
        await new Promise<void>((res, rej) =>
          zk.create(p, Buffer.from(v), 0, (err) => (err ? rej(err) : res())),
        );
      }
    });
    const backup = await startRunbook(stack.client, 'backupCluster', { clusterId, master: n1 });
    backupId = (await backup.result()).backupId;
    // Webapps stopped by bootstrapCluster are not part of what the tests look at.
    await rm(logs, { recursive: true, force: true });
    await mkdir(logs);
    log(`stack, bootstrap and backup in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    await stack?.close();
    await rm(logs, { recursive: true, force: true });
    delete process.env.CG_ADMISSION__CHECK_SECONDS;
  });

  test('during a decommission a restore and a rollout onto the leaving node are refused', async () => {
    decommission = await stack.client.workflow.start('decommissionNodes', {
      taskQueue: orchestratorTaskQueue,
      workflowId: decommissionId,
      args: [{ clusterId, nodes: [n2], master: n1 }],
    });
    // Held before its first step: it holds the cluster and changes nothing.
    await decommission.signal(pauseSignal, 'held by the admission test');
    await admissionUntil((s) => s.holders.some((h) => h.workflowId === decommissionId));
    await waitForProgress(decommission, (p) => p.paused !== undefined, 60_000);
    const before = await snapshot();

    const restore = await startRunbook(stack.client, 'restoreCluster', {
      clusterId,
      master: n1,
      backupId,
    });
    const refused = await failureOf(restore);
    assert.equal(refused.type, 'ClusterBusy');
    assert.match(refused.message, new RegExp(`decommissionNodes ${decommissionId} holds`));
    assert.match(refused.message, /waitForCluster/);

    // Waiting would not help a rollout onto a leaving node: refused even with waitForCluster.
    const onto = await rollout('com.example.leaving', { nodes: [n1, n2], waitForCluster: true });
    const leaving = await failureOf(onto);
    assert.equal(leaving.type, 'ClusterBusy');
    assert.match(leaving.message, new RegExp(`${n2.replace(/\./g, '\\.')} is leaving`));

    assert.deepEqual(await snapshot(), before);
    const state = await admission();
    assert.deepEqual(
      state.holders.map((h) => h.workflowId),
      [decommissionId],
    );
    await recordHistory(stack, restore.workflowId, 'restore-cluster-refused-busy');
  });

  test('the admission holds across a SIGKILL of the orchestrator', async () => {
    const before = await snapshot();
    queuedRestore = await startRunbook(stack.client, 'restoreCluster', {
      clusterId,
      master: n1,
      backupId,
      waitForCluster: true,
    });
    // The restore waits for its answer: queued behind the decommission.
    await admissionUntil((s) => s.queue.some((q) => q.workflowId === queuedRestore.workflowId));
    await waitForProgress(
      queuedRestore,
      (p) => p.steps.some((s) => s.id === 'admission' && s.status === 'waiting'),
      60_000,
    );
    await stack.killOrchestrator();
    // Started while no orchestrator runs: it asks once the next one is up.
    const second = await rollout('com.example.other', { nodes: [n1] });
    await stack.startOrchestrator();
    const refused = await failureOf(second);
    assert.equal(refused.type, 'ClusterBusy');
    assert.match(refused.message, new RegExp(`${decommissionId} holds`));
    const state = await admission();
    assert.deepEqual(
      state.holders.map((h) => h.workflowId),
      [decommissionId],
    );
    assert.deepEqual(
      state.queue.map((q) => q.workflowId),
      [queuedRestore.workflowId],
    );
    assert.deepEqual(await snapshot(), before);
  });

  test('a terminated holder is dropped; the queued restore then runs between webapps stop and start', async () => {
    await decommission.terminate('the admission test ends the decommission');
    const closed = (await decommission.describe()).closeTime;
    assert.ok(closed);
    const result = (await queuedRestore.result()) as {
      restored: unknown[];
      steps: { id: string }[];
    };
    assert.ok(result.restored.length > 0, 'the restore restored something');

    const state = await admissionUntil((s) => s.holders.length === 0);
    assert.ok(
      state.dropped.some((d) => d.workflowId === decommissionId && d.status === 'TERMINATED'),
      JSON.stringify(state.dropped),
    );

    const progress = await queuedRestore.query(progressQuery);
    const step = (id: string) => {
      const s = progress.steps.find((x) => x.id === id);
      assert.ok(s, `step ${id} in ${progress.steps.map((x) => x.id).join(', ')}`);
      return s;
    };
    const granted = Date.parse(step('admission').finishedAt ?? '');
    assert.ok(granted >= closed.getTime(), 'admitted only after the decommission ended');
    // The steps that change data (the planned ones); reads before them change nothing.
    const work = result.steps.map((s) => step(s.id));
    assert.ok(work.length > 0);
    const firstChange = Math.min(...work.map((s) => Date.parse(s.startedAt ?? '')));
    const lastChange = Math.max(...work.map((s) => Date.parse(s.finishedAt ?? '')));
    for (const n of nodes) {
      assert.equal(step(`webapps:stop:${n}`).status, 'completed');
      assert.equal(step(`webapps:start:${n}`).status, 'completed');
      assert.ok(Date.parse(step(`webapps:stop:${n}`).finishedAt ?? '') <= firstChange);
      assert.ok(Date.parse(step(`webapps:start:${n}`).startedAt ?? '') >= lastChange);
      assert.equal(await readFile(path.join(logs, `${n}.log`), 'utf8'), 'stop\nstart\n');
    }
    // The decommission never ran a step: both nodes are still members.
    for (const n of nodes) assert.deepEqual((await stack.clusterFile(n)).cluster.nodes, nodes);

    const history = await queuedRestore.fetchHistory();
    log(`restore with a queued admission: ${history.events?.length ?? 0} history events`);
    await recordHistory(stack, queuedRestore.workflowId, 'restore-cluster-queued-for-admission');
    await recordHistory(stack, admissionWorkflowId(clusterId), 'cluster-admission');
  });
});
