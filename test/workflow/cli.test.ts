import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';
import { createBackupSchedule } from '../../src/client/index.js';
import { recordHistory } from '../helpers/stack.js';
import { writeTestJar } from '../helpers/bundles.js';
import { cliEnv } from '../helpers/cli.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';
import { progressQuery } from '../../src/contracts/messages.js';

/**
 * The `clusterguard` CLI as a subprocess (bin/clusterguard.mjs) against the test dev server,
 * a real orchestrator worker in this process on its own task queue (given to the CLI through
 * CLUSTERGUARD_TASK_QUEUE, --task-queue or the config file) and real agent processes on
 * 127.0.0.61–.62 that run no middleware: ping and dry runs work on them; a backup on a node
 * with no agent (127.0.0.69) waits, which is what pause, resume and abort are tried on.
 */
const [n1, n2] = ['127.0.0.61', '127.0.0.62'];
const noAgent = '127.0.0.69';
const suffix = String(process.pid);

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

// The tests use their own clusters and workflow ids, and mostly wait: they run side by side.
describe('clusterguard CLI', { concurrency: true }, () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let client: Client;
  let dir: string;
  let env: Record<string, string>;
  const workflows = new Set<string>();
  const schedules = new Set<string>();

  async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    const r = await execa(
      process.execPath,
      [path.join(repoRoot, 'bin', 'clusterguard.mjs'), ...args],
      {
        cwd: repoRoot,
        reject: false,
        env: { ...env, ...extraEnv },
        extendEnv: false,
        timeout: 60_000,
      },
    );
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  function json<T>(r: Run): T {
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      assert.fail(`not JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
    }
  }

  async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(200);
    }
  }

  before(async () => {
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster([n1, n2]),
    ]);
    client = orchestrator.client;
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-cli-'));
    env = cliEnv(dir, orchestrator.taskQueue);
  });

  after(async () => {
    for (const id of schedules) {
      await client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    // Whatever the tests' runbooks left running (scheduled runs included), by cluster.
    for (const c of ['', '-park', '-sched', '-guard'].map((k) => `cli${k}-${suffix}`)) {
      for await (const w of client.workflow.list({
        query: `ClusterId="${c}" AND ExecutionStatus="Running"`,
      })) {
        workflows.add(w.workflowId);
      }
    }
    for (const id of workflows) {
      await client.workflow
        .getHandle(id)
        .terminate('test cleanup')
        .catch(() => undefined);
    }
    await orchestrator?.close();
    await cluster?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('help, bad input and an unreachable server: clear messages, meaningful exit codes', async () => {
    const [help, bad, unreachable] = await Promise.all([
      cli(['backup', 'schedule', 'create', '--help']),
      cli(['bootstrap', '--cluster', 'Bad_Id', '--nodes', `${n1},${n1}`, '--json'], {
        // Nothing is sent: the input is refused before connecting (there is no server there).
        TEMPORAL_ADDRESS: `${noAgent}:1`,
      }),
      cli(['status', 'cg/x/data', '--address', `${noAgent}:1`, '--connect-timeout', '1']),
    ]);
    assert.equal(help.exitCode, 0, help.stderr);
    assert.match(help.stdout, /Example:\n\s+\$ clusterguard backup schedule create .*--cron/);
    assert.match(help.stdout, /--every <interval>/);

    assert.equal(bad.exitCode, 2, bad.stdout + bad.stderr);
    const err = json<{ error: { type: string; message: string; exitCode: number } }>(bad).error;
    assert.equal(err.type, 'InvalidInput');
    assert.match(err.message, /clusterId: expected a cluster id/);
    assert.match(err.message, /nodes: duplicate node address 127\.0\.0\.61/);

    assert.equal(unreachable.exitCode, 3, unreachable.stderr);
    assert.match(unreachable.stderr, new RegExp(`cannot connect to Temporal at ${noAgent}:1`));
  });

  test('ping --wait --json (connection from a config file), then status as a table', async () => {
    const config = path.join(dir, 'cli.yaml');
    const { address, namespace } = testServer();
    await writeFile(
      config,
      `address: ${address}\nnamespace: ${namespace}\ntaskQueue: ${orchestrator.taskQueue}\n`,
    );
    const wid = `cg/cli-${suffix}/ping/1`;
    workflows.add(wid);
    const ping = await cli(
      [
        '--config',
        config,
        'ping',
        '--cluster',
        `cli-${suffix}`,
        '--nodes',
        `${n1},${n2}`,
        '--workflow-id',
        wid,
        '--wait',
        '--json',
      ],
      { TEMPORAL_ADDRESS: '', CLUSTERGUARD_TASK_QUEUE: '' },
    );
    assert.equal(ping.exitCode, 0, ping.stdout + ping.stderr);
    const outcome = json<{
      status: string;
      workflowId: string;
      result: { nodes: { address: string }[] };
    }>(ping);
    assert.equal(outcome.status, 'COMPLETED');
    assert.equal(outcome.workflowId, wid);
    assert.deepEqual(
      outcome.result.nodes.map((n) => n.address),
      [n1, n2],
    );

    const [status, missing] = await Promise.all([
      cli(['status', wid]),
      cli(['status', `cg/cli-${suffix}/ping/none`, '--json']),
    ]);
    assert.equal(status.exitCode, 0, status.stderr);
    assert.match(status.stdout, /pingCluster on cluster cli-\d+: completed, 2\/2 steps done/);
    assert.match(status.stdout, new RegExp(`│ ${n1.replace(/\./g, '\\.')}\\s+│ completed`));
    assert.match(status.stdout, /pingCluster cg\/cli-\d+\/ping\/1 \(run [0-9a-f-]+\): completed/);
    assert.equal(missing.exitCode, 4, missing.stdout);
    assert.equal(json<{ error: { exitCode: number } }>(missing).error.exitCode, 4);
  });

  test('bundle push to an agent, then bundle rollout --dry-run --wait plans it', async () => {
    const jar = await writeTestJar(path.join(dir, 'app.jar'), {
      symbolicName: 'com.example.cli',
      version: '2.1.0',
    });
    const agentUrl = `http://${n1}:${cluster.port}`;
    const refused = await cli(['bundle', 'push', jar.file, '--agent', agentUrl]);
    assert.equal(refused.exitCode, 2, 'no token: refused before sending');
    assert.match(refused.stderr, /no cluster token/);
    const pushed = await cli(['bundle', 'push', jar.file, '--agent', agentUrl, '--json'], {
      CLUSTERGUARD_TOKEN_FILE: cluster.tokenFile,
    });
    assert.equal(pushed.exitCode, 0, pushed.stdout + pushed.stderr);
    const info = json<{ symbolicName: string; version: string; sha256: string }>(pushed);
    assert.deepEqual(info, {
      ...info,
      symbolicName: 'com.example.cli',
      version: '2.1.0',
      sha256: jar.sha256,
    });

    const wid = `cg/cli-${suffix}/bundle/com.example.cli`;
    workflows.add(wid);
    const plan = await cli([
      'bundle',
      'rollout',
      '--cluster',
      `cli-${suffix}`,
      '--name',
      'com.example.cli',
      '--sha256',
      jar.sha256,
      '--nodes',
      `${n1},${n2}`,
      '--source',
      n1,
      '--dry-run',
      '--wait',
      '--json',
    ]);
    assert.equal(plan.exitCode, 0, plan.stdout + plan.stderr);
    const outcome = json<{
      status: string;
      workflowId: string;
      result: { plan: { batches: string[][] } };
    }>(plan);
    assert.equal(outcome.status, 'COMPLETED');
    // A dry run takes an id of its own beside the rollout's, so it never blocks one.
    assert.ok(outcome.workflowId.startsWith(`${wid}/dry-run/`), outcome.workflowId);
    workflows.add(outcome.workflowId);
    assert.deepEqual(outcome.result.plan.batches, [[n1], [n2]]);
  });

  test('bootstrap --dry-run --wait with flags; watch renders progress bars', async () => {
    const { address } = testServer();
    const clusterId = `cli-${suffix}`;
    workflows.add(`cg/${clusterId}/membership`);
    const pingId = `cg/${clusterId}/ping/held`;
    workflows.add(pingId);
    const [dry, started] = await Promise.all([
      cli(
        [
          'bootstrap',
          '--cluster',
          clusterId,
          '--nodes',
          `${n1},${n2}`,
          '--dry-run',
          '--wait',
          '--json',
          '--address',
          address,
          '--task-queue',
          orchestrator.taskQueue,
        ],
        { TEMPORAL_ADDRESS: '', CLUSTERGUARD_TASK_QUEUE: 'nobody-polls-this' },
      ),
      cli([
        'ping',
        '--cluster',
        clusterId,
        '--nodes',
        `${n1},${n2}`,
        '--hold-seconds',
        '3',
        '--workflow-id',
        pingId,
        '--json',
      ]),
    ]);
    assert.equal(dry.exitCode, 0, dry.stdout + dry.stderr);
    const plan = json<{
      status: string;
      result: { dryRun: boolean; runbook: string; nodes: string[]; plan: { steps: unknown[] } };
    }>(dry);
    assert.equal(plan.status, 'COMPLETED');
    assert.equal(plan.result.runbook, 'bootstrapCluster');
    assert.equal(plan.result.dryRun, true);
    assert.ok(plan.result.plan.steps.length > 0);

    assert.equal(started.exitCode, 0, started.stderr);
    assert.equal(json<{ workflowId: string }>(started).workflowId, pingId);
    const watch = await cli(['watch', pingId, '--interval', '0.3']);
    assert.equal(watch.exitCode, 0, watch.stdout + watch.stderr);
    // cli-progress without a terminal prints the bars as lines: one per node.
    assert.match(watch.stderr, new RegExp(`${n1.replace(/\./g, '\\.')}\\s+\\[[█░]+\\] [01]/1`));
    assert.match(watch.stderr, new RegExp(`${n2.replace(/\./g, '\\.')}\\s+\\[`));
    assert.match(watch.stdout, /pingCluster on cluster cli-\d+: completed, 2\/2 steps done/);
    assert.match(watch.stdout, /: completed$/m);
  });

  test('guardian start and status; a second membership runbook is refused (exit 5)', async () => {
    const clusterId = `cli-guard-${suffix}`;
    workflows.add(`cg/${clusterId}/guardian`);
    workflows.add(`cg/${clusterId}/membership`);
    const guardian = ['--cluster', clusterId, '--master', n1, '--desired', n1, '--dry-run'];
    // A join whose master has no agent waits for it, holding cg/<cluster>/membership.
    const member = ['--cluster', clusterId, '--node', noAgent, '--master', '127.0.0.68'];
    const [start, join] = await Promise.all([
      cli(['guardian', 'start', ...guardian, '--json']),
      cli(['join', ...member, '--agent-timeout', '1', '--json']),
    ]);
    assert.equal(start.exitCode, 0, start.stdout + start.stderr);
    assert.equal(json<{ workflowId: string }>(start).workflowId, `cg/${clusterId}/guardian`);
    assert.equal(join.exitCode, 0, join.stdout + join.stderr);
    assert.equal(json<{ workflowId: string }>(join).workflowId, `cg/${clusterId}/membership`);

    const rejoin = await cli(['rejoin', ...member]);
    assert.equal(rejoin.exitCode, 5, rejoin.stderr);
    assert.match(rejoin.stderr, /cannot start rejoinNode .*joinNode \(run .*\) is still running/);
    const status = await cli(['guardian', 'status', '--cluster', clusterId, '--json']);
    assert.equal(status.exitCode, 0, status.stdout + status.stderr);
    assert.equal(json<{ clusterId: string }>(status).clusterId, clusterId);
  });

  test('a waiting backup: busy, pause, a refused update, resume, abort, watch exits 1, list', async () => {
    const clusterId = `cli-park-${suffix}`;
    const wid = `cg/${clusterId}/data`;
    workflows.add(wid);
    const args = ['--cluster', clusterId, '--master', noAgent, '--agent-timeout', '1', '--json'];
    const first = await cli(['backup', ...args]);
    assert.equal(first.exitCode, 0, first.stdout + first.stderr);
    assert.equal(json<{ workflowId: string }>(first).workflowId, wid);

    const handle = client.workflow.getHandle(wid);
    await until('the read step waits for the missing agent', async () => {
      const p = await handle.query(progressQuery);
      return p.steps.some((s) => s.node === noAgent && s.status === 'waiting') ? p : undefined;
    });

    // A scheduled fire meets the same refusal: its scheduledBackup fails with ClusterBusy.
    const scheduleId = `cg/${clusterId}/backup-schedule/default`;
    schedules.add(scheduleId);
    await createBackupSchedule(
      client,
      { every: '1h', paused: true, input: { clusterId, master: noAgent } },
      { taskQueue: orchestrator.taskQueue },
    );
    const [busy, pause, trigger] = await Promise.all([
      cli(['backup', ...args]),
      cli(['pause', wid, '--reason', 'cli test']),
      cli(['backup', 'schedule', 'trigger', '--cluster', clusterId]),
    ]);
    assert.equal(busy.exitCode, 5, busy.stdout);
    assert.equal(json<{ error: { type: string } }>(busy).error.type, 'ClusterBusy');
    assert.equal(trigger.exitCode, 0, trigger.stderr);
    const fired = await until('the triggered fire', async () => {
      const d = await client.schedule.getHandle(scheduleId).describe();
      return d.info.recentActions[0]?.action.workflow.workflowId;
    });
    workflows.add(fired);
    await assert.rejects(client.workflow.getHandle(fired).result(), (err: unknown) => {
      const cause = (err as { cause?: { type?: string; message?: string } }).cause;
      assert.equal(cause?.type, 'ClusterBusy');
      assert.match(
        cause?.message ?? '',
        /another data runbook is running as cg\/cli-park-\d+\/data/,
      );
      return true;
    });
    assert.equal(pause.exitCode, 0, pause.stderr);
    await until('paused', async () =>
      (await handle.query(progressQuery)).paused ? true : undefined,
    );

    const [retry, resume] = await Promise.all([
      cli(['retry-step', wid, '--json']),
      cli(['resume', wid]),
    ]);
    assert.equal(retry.exitCode, 5, retry.stdout);
    assert.match(
      json<{ error: { message: string } }>(retry).error.message,
      /waits for an unreachable node/,
    );
    assert.equal(resume.exitCode, 0, resume.stderr);
    await until('resumed', async () =>
      (await handle.query(progressQuery)).paused ? undefined : true,
    );

    const abort = await cli(['abort', wid, '--reason', 'cli test abort', '--json']);
    assert.equal(abort.exitCode, 0, abort.stdout + abort.stderr);
    assert.match(json<{ answer: string }>(abort).answer, /aborting backupCluster/);
    const watch = await cli(['watch', wid, '--json']);
    assert.equal(watch.exitCode, 1, watch.stdout + watch.stderr);
    const last = watch.stdout.trim().split('\n').at(-1) ?? '';
    const { outcome } = JSON.parse(last) as {
      outcome: { status: string; failure: { type: string; message: string } };
    };
    assert.equal(outcome.status, 'FAILED');
    assert.equal(outcome.failure.type, 'Aborted');
    assert.match(outcome.failure.message, /cli test abort/);

    // Visibility lags a little behind: wait until the server lists it, then ask the CLI.
    await until('listed', async () => {
      const query = `ClusterId="${clusterId}" AND Runbook="backupCluster"`;
      for await (const w of client.workflow.list({ query })) {
        if (w.status.name === 'FAILED') return true;
      }
      return undefined;
    });
    const listed = await cli([
      'list',
      '--cluster',
      clusterId,
      '--runbook',
      'backupCluster',
      '--json',
    ]);
    assert.equal(listed.exitCode, 0, listed.stderr);
    const rows = json<{ workflowId: string; type: string; status: string }[]>(listed);
    assert.deepEqual(
      rows.map((r) => [r.workflowId, r.type, r.status]),
      [[wid, 'backupCluster', 'FAILED']],
    );
  });

  test('backup schedule: create fires backupCluster as cg/<cluster>/data; list, pause, trigger, unpause, delete', async () => {
    const clusterId = `cli-sched-${suffix}`;
    const scheduleId = `cg/${clusterId}/backup-schedule/default`;
    schedules.add(scheduleId);
    workflows.add(`cg/${clusterId}/data`);

    const created = await cli([
      'backup',
      'schedule',
      'create',
      '--cluster',
      clusterId,
      '--master',
      n1,
      '--every',
      '2s',
      '--keep',
      '3',
      '--input',
      '{"stepAttempts":1}',
      '--json',
    ]);
    assert.equal(created.exitCode, 0, created.stdout + created.stderr);
    const info = json<{
      scheduleId: string;
      every: string;
      paused: boolean;
      input: { keep: number };
    }>(created);
    assert.equal(info.scheduleId, scheduleId);
    assert.equal(info.every, '2s');
    assert.equal(info.paused, false);
    assert.equal(info.input.keep, 3);

    // What is asserted: the schedule started backupCluster under the cluster's data id, as a
    // child of the scheduled run (the backup itself fails or parks: these agents hold no data).
    const backup = await until('a scheduled backupCluster', async () => {
      const d = await client.workflow.getHandle(`cg/${clusterId}/data`).describe();
      return d;
    });
    assert.equal(backup.type, 'backupCluster');
    assert.match(
      backup.parentExecution?.workflowId ?? '',
      new RegExp(`^cg/${clusterId}/scheduled-backup/default-`),
    );
    const parent = await client.workflow
      .getHandle(backup.parentExecution?.workflowId ?? '')
      .describe();
    assert.equal(parent.type, 'scheduledBackup');
    workflows.add(parent.workflowId);
    await recordHistory(
      { temporalAddress: process.env.CG_TEST_TEMPORAL_ADDRESS ?? '' },
      parent.workflowId,
      'scheduled-backup',
    );

    await until('the schedule is listed', async () => {
      for await (const s of client.schedule.list()) if (s.scheduleId === scheduleId) return true;
      return undefined;
    });
    const [listed, paused] = await Promise.all([
      cli(['backup', 'schedule', 'list', '--cluster', clusterId, '--json']),
      cli([
        'backup',
        'schedule',
        'pause',
        '--cluster',
        clusterId,
        '--note',
        'maintenance',
        '--json',
      ]),
    ]);
    assert.equal(listed.exitCode, 0, listed.stderr);
    const rows = json<{ name: string; recent: { workflowId: string }[] }[]>(listed);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.name, 'default');
    assert.ok(
      rows[0]?.recent.some((r) => r.workflowId === parent.workflowId),
      listed.stdout,
    );
    assert.equal(paused.exitCode, 0, paused.stderr);
    assert.equal(json<{ paused: boolean; note: string }>(paused).paused, true);
    assert.equal(json<{ paused: boolean; note: string }>(paused).note, 'maintenance');

    // Paused, the schedule fires only when triggered: started, or skipped while the last
    // fire's backup still runs (overlap policy SKIP).
    const fired = async () => {
      const d = await client.schedule.getHandle(scheduleId).describe();
      return d.info.numActionsTaken + d.info.numActionsSkippedOverlap;
    };
    const before = await fired();
    const trigger = await cli(['backup', 'schedule', 'trigger', '--cluster', clusterId]);
    assert.equal(trigger.exitCode, 0, trigger.stderr);
    await until('the trigger fired', async () => ((await fired()) > before ? true : undefined));

    const unpaused = await cli(['backup', 'schedule', 'unpause', '--cluster', clusterId, '--json']);
    assert.equal(unpaused.exitCode, 0, unpaused.stderr);
    assert.equal(json<{ paused: boolean }>(unpaused).paused, false);
    const deleted = await cli(['backup', 'schedule', 'delete', '--cluster', clusterId]);
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    const gone = await cli(['backup', 'schedule', 'describe', '--cluster', clusterId]);
    assert.equal(gone.exitCode, 4, gone.stdout + gone.stderr);
    await assert.rejects(
      client.workflow.getHandle('cg/none/data').describe(),
      WorkflowNotFoundError,
    );
  });
});
