import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import { startRunbook } from '../../src/client/index.js';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import type { BackupClusterResult, ExportDataResult } from '../../src/contracts/data-runbooks.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { repoRoot } from '../../src/process.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { stopMiddleware } from '../helpers/stack.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The README's `temporal` CLI cookbook, run command by command exactly as written (only
 * TEMPORAL_ADDRESS points the CLI at this run's dev server), against an orchestrator on the
 * `clusterguard` task queue and agents on 127.0.0.11–.13 as `npm start` has them, running
 * ZooKeeper only (the cheapest middleware that forms a cluster). The cluster `dev` is formed
 * first with bootstrapCluster, so every dry run has a cluster to plan against: each must
 * complete with its plan (a refusal fails the test). Every command must succeed, and every
 * runbook it starts must have run its code: it ends rather than wait on an unknown type.
 */
const nodes = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];

/** The commands between the cookbook markers, continuation lines joined, comments dropped. */
async function cookbook(): Promise<string[]> {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- cookbook:start -->\s*```sh\n([\s\S]*?)```\s*<!-- cookbook:end -->/.exec(
    readme,
  )?.[1];
  assert.ok(block, 'README.md has a cookbook block between the markers');
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

describe("the README's temporal CLI cookbook, as written", () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let config = '';

  before(async () => {
    config = path.join(os.tmpdir(), `cg-cookbook-${process.pid}.yaml`);
    await writeFile(
      config,
      toYaml({ middleware: { enabled: ['zookeeper'], zookeeper: { heapMb: 64 } } }),
    );
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator({ taskQueue: orchestratorTaskQueue }),
      startTestCluster(nodes, {
        env: () => ({
          CG_CONFIG: config,
          CG_MIDDLEWARE__BIN_DIR: path.join(repoRoot, '.tools'),
        }),
      }),
    ]);
    const formed = await (
      await startRunbook(orchestrator.client, 'bootstrapCluster', { clusterId: 'dev', nodes })
    ).result();
    assert.deepEqual(formed.nodes, nodes, 'the cluster dev is formed');
  });
  after(async () => {
    await orchestrator?.close();
    if (cluster) await stopMiddleware(nodes.map((n) => path.join(cluster.dir, 'nodes', n)));
    await cluster?.close();
    if (config) await rm(config, { force: true });
  });

  test('every command succeeds; every runbook it starts runs', async () => {
    const commands = await cookbook();
    assert.ok(commands.length >= 10, `${commands.length} commands`);
    const { address, namespace } = testServer();
    const outputs: string[] = [];
    for (const command of commands) {
      const r = await execa('bash', ['-c', command], {
        cwd: repoRoot,
        env: { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
        reject: false,
        timeout: 60_000,
      });
      assert.equal(r.exitCode, 0, `${command}\n${r.stdout}\n${r.stderr}`);
      outputs.push(r.stdout);
    }
    const output = (command: RegExp) => outputs[commands.findIndex((c) => command.test(c))] ?? '';
    assert.match(output(/workflow result --workflow-id cg\/dev\/ping/), /127\.0\.0\.13/);
    assert.match(output(/query --workflow-id cg\/dev\/ping/), /"steps"/);
    assert.match(output(/Runbook="pingCluster"/), /cg\/dev\/ping\/cookbook/);
    assert.match(output(/query --workflow-id cg\/dev\/membership/), /"paused"/);
    assert.match(output(/--name abort/), /aborting bootstrapCluster/);
    assert.match(output(/Runbook="bootstrapCluster"/), /cg\/dev\/membership/);

    // Every dry run planned against the formed cluster; none was refused.
    const plan = <T>(id: string) =>
      orchestrator.client.workflow.getHandle(id).result() as Promise<T>;
    const boot = await plan<MembershipRunbookResult>('cg/dev/plan/bootstrap');
    assert.deepEqual([boot.dryRun, boot.plan.membership.desired], [true, nodes]);
    const join = await plan<MembershipRunbookResult>('cg/dev/plan/join');
    assert.deepEqual(join.plan.membership.desired, [...nodes, '127.0.0.14']);
    assert.ok(join.plan.steps.some((s) => s.id === 'join:127.0.0.14:zookeeper'));
    const leave = await plan<MembershipRunbookResult>('cg/dev/plan/decommission');
    assert.equal(leave.refusal, undefined, leave.refusal);
    assert.deepEqual(leave.plan.membership.desired, nodes.slice(0, 2));
    assert.ok(leave.plan.steps.some((s) => s.id === 'reset:127.0.0.13'));
    const backup = await plan<BackupClusterResult>('cg/dev/plan/backup');
    assert.deepEqual(backup.plan, [{ node: nodes[0], components: ['zookeeper'] }]);
    assert.deepEqual(backup.copies, [], 'a dry run copies nothing');
    assert.deepEqual(
      backup.steps.map((s) => s.id),
      [
        `backup:${nodes[0]}:zookeeper`,
        `archive:${nodes[0]}`,
        `verify:${nodes[0]}`,
        `copy:${nodes[1]}`,
      ],
    );
    const exported = await plan<ExportDataResult>('cg/dev/plan/export');
    assert.deepEqual(exported.plan, [{ node: nodes[0], components: ['zookeeper'] }]);

    // Each runbook started ran its own code: it ends, instead of waiting on a workflow type
    // the orchestrator does not know (that would stay running, its tasks failing).
    const ids = [...new Set(commands.flatMap((c) => /--workflow-id (\S+)/.exec(c)?.[1] ?? []))];
    for (const id of ids) {
      const handle = orchestrator.client.workflow.getHandle(id);
      let status = '';
      for (let i = 0; i < 150; i++) {
        status = (await handle.describe()).status.name;
        if (status !== 'RUNNING') break;
        await sleep(200);
      }
      assert.ok(['COMPLETED', 'FAILED'].includes(status), `${id} ended: ${status}`);
      if (status === 'FAILED') {
        const failure = await handle.result().then(
          () => undefined,
          (err: Error & { cause?: { type?: string; message?: string } }) => err.cause,
        );
        assert.ok(
          ['InvalidInput', 'Aborted', 'UnsafeMembershipChange'].includes(failure?.type ?? ''),
          `${id} failed saying why: ${failure?.type} ${failure?.message}`,
        );
      }
    }
  });
});
