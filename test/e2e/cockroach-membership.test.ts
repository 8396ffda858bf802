import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { repoRoot } from '../../src/process.js';
import { startStack, type Stack } from '../helpers/stack.js';

/**
 * The membership runbooks with CockroachDB beside ZooKeeper and Kafka. CockroachDB cannot be
 * installed here: every node runs the named STAND-IN (`test/fixtures/cockroach-stand-in.mjs`,
 * a fake `cockroach` CLI and server) through the real adapter — certificates, init, join,
 * rejoin keeping the store, decommission — and each runbook must end with every range fully
 * replicated (`node status --ranges`, as the stand-in counts them). Nodes 127.0.0.136–.139.
 */

const [e1, e2, e3, e4] = ['127.0.0.136', '127.0.0.137', '127.0.0.138', '127.0.0.139'] as const;
const clusterId = 'crdb';
type Handle = WorkflowHandle<(input: unknown) => Promise<MembershipRunbookResult>>;

async function run(stack: Stack, runbook: string, input: Record<string, unknown>) {
  const handle: Handle = await stack.client.workflow.start(runbook, {
    args: [{ clusterId, ...input }],
    taskQueue: orchestratorTaskQueue,
    workflowId: `cg/${clusterId}/membership`,
  });
  return handle.result();
}

function cockroachLine(result: MembershipRunbookResult): string {
  return result.inSync?.find((l) => l.startsWith('cockroach:')) ?? '(none)';
}

describe('membership runbooks with the CockroachDB STAND-IN beside ZooKeeper and Kafka', () => {
  let stack: Stack;
  let binDir: string;

  before(async () => {
    // The agents' binaries: the real ZooKeeper and Kafka, the stand-in as `cockroach`.
    binDir = await mkdtemp(path.join(os.tmpdir(), 'cg-crdb-bin-'));
    for (const mw of ['zookeeper', 'kafka'])
      await symlink(path.join(repoRoot, '.tools', mw), path.join(binDir, mw));
    await symlink(
      fileURLToPath(new URL('../fixtures/cockroach-stand-in.mjs', import.meta.url)),
      path.join(binDir, 'cockroach'),
    );
    stack = await startStack([e1, e2, e3, e4], {
      enabled: ['cockroach', 'zookeeper', 'kafka'],
      binDir,
    });
  });
  after(async () => {
    await stack?.close();
    await rm(binDir, { recursive: true, force: true });
  });

  test('bootstrap three nodes: ranges fully replicated when it reports done', async () => {
    const result = await run(stack, 'bootstrapCluster', { nodes: [e1, e2, e3] });
    assert.deepEqual(result.nodes, [e1, e2, e3]);
    assert.deepEqual(result.plan.middleware, ['cockroach', 'zookeeper', 'kafka']);
    assert.equal(
      cockroachLine(result),
      'cockroach: 3 live nodes, no range under-replicated or unavailable',
    );
  });

  test('join a fourth node, rejoin a member with its store, decommission the fourth', async () => {
    let result = await run(stack, 'joinNode', { node: e4, master: e1 });
    assert.equal(
      cockroachLine(result),
      'cockroach: 4 live nodes, no range under-replicated or unavailable',
    );
    const marker = path.join(stack.layout(e3).nodeDataFolder('cockroach'), 'e2e-marker');
    await writeFile(marker, 'kept');
    result = await run(stack, 'rejoinNode', { node: e3, master: e1 });
    assert.deepEqual(result.nodes, [e1, e2, e3, e4]);
    assert.match(cockroachLine(result), /^cockroach: 4 live nodes, no range/);
    assert.equal(await readFile(marker, 'utf8'), 'kept', 'the rejoining member keeps its store');

    result = await run(stack, 'decommissionNodes', { nodes: [e4] });
    assert.deepEqual(result.nodes, [e1, e2, e3]);
    assert.equal(
      cockroachLine(result),
      'cockroach: 3 live nodes, no range under-replicated or unavailable',
    );
    assert.deepEqual((await stack.clusterFile(e4)).cluster.nodes, [e4]);
  });
});
