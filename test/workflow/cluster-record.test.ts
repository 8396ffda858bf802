import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { startRunbook } from '../../src/client/index.js';
import { NodeLayout } from '../../src/config/layout.js';
import { clusterFileSchema, serializeClusterFile } from '../../src/contracts/cluster-file.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The cluster's name is enough (docs/design.md, "The cluster record"): a data runbook without
 * `master` on a cluster never seen fails with `UnknownCluster` saying how to bootstrap or adopt
 * it; one started with `master` adopts the cluster; the next needs only the name. A real dev
 * server, the orchestrator's record file, one agent process on 127.0.0.206 whose cluster.json
 * names 127.0.0.206 master of [127.0.0.206, 127.0.0.207].
 */
const master = '127.0.0.206';
const members = [master, '127.0.0.207'];
const clusterId = `record-${process.pid}`;

describe('a data runbook finds the master from the cluster record', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let recordDir: string;
  let recordFile: string;

  before(async () => {
    recordDir = await mkdtemp(path.join(os.tmpdir(), 'cg-record-'));
    recordFile = path.join(recordDir, 'clusters.json');
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator({ clusterRecordFile: recordFile }),
      startTestCluster([master]),
    ]);
    const file = new NodeLayout(path.join(cluster.dir, 'nodes', master)).clusterFile;
    await mkdir(path.dirname(file), { recursive: true });
    const state = clusterFileSchema.parse({
      cluster: {
        datetime: new Date().toISOString(),
        nodes: members,
        decommissionNodes: [],
        clusterConfigReady: true,
        nodeConfigReady: true,
        nodeIsMaster: true,
        nodeIsRejoin: false,
      },
      history: [],
    });
    await writeFile(file, serializeClusterFile(state));
  });
  after(async () => {
    await Promise.all([orchestrator?.close(), cluster?.close()]);
    await rm(recordDir, { recursive: true, force: true });
  });

  const backup = (input: { master?: string }) =>
    startRunbook(
      orchestrator.client,
      'backupCluster',
      { clusterId, dryRun: true, middleware: ['controller'], ...input },
      { taskQueue: orchestrator.taskQueue },
    ).then((h) => h.result());

  test('unknown, then adopted by naming its master, then by name only', async () => {
    await assert.rejects(backup({}), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      const cause = err.cause;
      assert.ok(cause instanceof ApplicationFailure, String(cause));
      assert.equal(cause.type, 'UnknownCluster');
      assert.match(cause.message, new RegExp(`cluster ${clusterId} is not known`));
      assert.match(cause.message, /bootstrapCluster/);
      assert.match(cause.message, /adopt a running cluster by giving its master once/);
      return true;
    });

    const adopted = await backup({ master });
    assert.deepEqual(adopted.members, members);
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as {
      clusters: Record<string, { nodes: string[] }>;
    };
    assert.deepEqual(record.clusters[clusterId]?.nodes, members);

    const byName = await backup({});
    assert.equal(byName.master, master);
    assert.deepEqual(byName.members, members);
    assert.deepEqual(
      byName.plan.map((p) => p.node),
      members,
    );
  });
});
