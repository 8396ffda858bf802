import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { stagingFolderOf, stagingLeftovers } from '../../activities/bundle-activities.js';
import { bundleStatus, pushBundle } from '../../src/bundles/client.js';
import { sha256OfFile } from '../../src/bundles/store.js';
import type { BundlesView, RolloutBundleInput } from '../../src/contracts/bundles.js';
import type { Progress } from '../../src/contracts/progress.js';
import { startRunbook } from '../../src/client/index.js';
import { recordHistory } from '../helpers/stack.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { writeTestJar } from '../helpers/bundles.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

// The orchestrator's whole bundle: a rollout asks the cluster's admission workflow first.
const nodes = ['127.0.0.42', '127.0.0.43', '127.0.0.44'];
const [first = '', failing = '', killed = ''] = nodes;
const symbolicName = 'com.example.rollout';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Rejects with an error whose message, or one of its causes', matches `pattern`. */
async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message);
    assert.ok(
      messages.some((m) => pattern.test(m)),
      `${pattern} in ${messages.join(' / ')}`,
    );
    return true;
  });
}

/**
 * Each agent's health checks, as an operator would configure them. `app` fails on one node
 * and `slow` takes 3 s on another, so a test can kill that agent in the middle of its install.
 */
function agentConfig(address: string): Record<string, unknown> {
  return {
    events: { enabled: false },
    bundles: {
      healthChecks: {
        ok: { command: ['true'] },
        app: {
          command:
            address === failing ? ['sh', '-c', 'echo app did not start >&2; exit 1'] : ['true'],
        },
        slow: {
          command: address === killed ? ['sh', '-c', 'sleep 3; test -f "$BUNDLE_FILE"'] : ['true'],
        },
      },
    },
  };
}

// Written before the agents start, read by each through CG_CONFIG.
const configDir = await mkdtemp(path.join(os.tmpdir(), 'cg-bundle-config-'));
const configFile = (address: string) => path.join(configDir, `${address}.yaml`);
await Promise.all(nodes.map((n) => writeFile(configFile(n), stringify(agentConfig(n)))));

/** With CG_RECORD_HISTORIES=<dir>, histories for test/replay are written there. */
const recorder = { temporalAddress: process.env.CG_TEST_TEMPORAL_ADDRESS ?? '' };

describe('rolloutBundle against a real dev server and three agent processes', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  const clusterId = `bundle-test-${process.pid}`;
  const jars: { v1: string; v2: string; v3: string } = { v1: '', v2: '', v3: '' };

  before(async () => {
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster(nodes, {
        env: (address) => ({ CG_CONFIG: configFile(address) }),
      }),
    ]);
    for (const v of ['v1', 'v2', 'v3'] as const) {
      const jar = await writeTestJar(path.join(cluster.dir, `${v}.jar`), {
        symbolicName,
        version: `${v.slice(1)}.0.0`,
      });
      // Uploaded to one agent only: the others fetch it from there.
      const pushed = await pushBundle(
        { url: `http://${first}:${cluster.port}`, token: cluster.token },
        jar.file,
      );
      assert.equal(pushed.sha256, jar.sha256);
      jars[v] = jar.sha256;
    }
  });
  after(async () => {
    await Promise.all([orchestrator?.close(), cluster?.close()]);
    await rm(configDir, { recursive: true, force: true });
  });

  const deployed = async (node: string) => {
    const file = path.join(cluster.dir, 'nodes', node, 'bundles', 'deploy', `${symbolicName}.jar`);
    return (await sha256OfFile(file).catch(() => undefined))?.sha256;
  };
  const start = (input: Omit<RolloutBundleInput, 'clusterId'>, workflowId?: string) =>
    startRunbook(
      orchestrator.client,
      'rolloutBundle',
      { clusterId, agentTimeoutSeconds: 20, ...input },
      { symbolicName, taskQueue: orchestrator.taskQueue, ...(workflowId ? { workflowId } : {}) },
    );
  const table = () =>
    bundleStatus({ nodes, port: cluster.port, token: cluster.token, symbolicName });

  test('installs on three agents, verified; a second rollout skips every node', async () => {
    let t0 = Date.now();
    const r = await (
      await start({ sha256: jars.v1, nodes, batchSize: 2, healthCheck: 'ok' })
    ).result();
    const rolloutMs = Date.now() - t0;
    assert.equal(r.outcome, 'completed');
    assert.equal(r.version, '1.0.0');
    assert.deepEqual(r.plan.batches, [[first, failing], [killed]]);
    assert.deepEqual(
      r.nodes.map((n) => [n.node, n.status, n.previous]),
      nodes.map((n) => [n, 'installed', null]),
    );
    for (const n of nodes) assert.equal(await deployed(n), jars.v1, `deploy folder of ${n}`);

    t0 = Date.now();
    const again = await (await start({ sha256: jars.v1, nodes, healthCheck: 'ok' })).result();
    const noopMs = Date.now() - t0;
    assert.equal(again.outcome, 'completed');
    assert.deepEqual(again.plan.upToDate, nodes);
    assert.deepEqual(again.plan.batches, []);
    assert.deepEqual(
      again.nodes.map((n) => n.status),
      ['skipped-current', 'skipped-current', 'skipped-current'],
    );
    assert.match(again.nodes[0]?.detail ?? '', /already runs 1\.0\.0/);
    console.error(`[measure] rollout to 3 nodes: ${rolloutMs} ms; no-op rollout: ${noopMs} ms`);
  });

  test('refuses an unknown health check and a foreign workflow id before installing; a dry run plans', async () => {
    const unknown = await start({ sha256: jars.v2, nodes, healthCheck: 'nonesuch' });
    await rejectsWith(
      unknown.result(),
      /health check "nonesuch" is not configured on 127\.0\.0\.42, 127\.0\.0\.43, 127\.0\.0\.44/,
    );
    const foreign = await start({ sha256: jars.v2, nodes }, `rollout-${process.pid}`);
    await rejectsWith(
      foreign.result(),
      /must run as cg\/bundle-test-\d+\/bundle\/com\.example\.rollout/,
    );
    // Members come from the master's cluster.json; these agents are standalone (127.0.0.1).
    await rejectsWith(
      (await start({ sha256: jars.v2, master: first })).result(),
      /127\.0\.0\.42 is not a member of the cluster its cluster\.json describes/,
    );
    // A dry run may run under any id: it reports the plan and changes nothing.
    const dry = await (
      await start({ sha256: jars.v2, nodes, batchSize: 2, dryRun: true }, `dry-${process.pid}`)
    ).result();
    assert.equal(dry.outcome, 'planned');
    assert.deepEqual(dry.plan.batches, [[first, failing], [killed]]);
    assert.deepEqual(
      dry.nodes.map((n) => n.previous?.version),
      ['1.0.0', '1.0.0', '1.0.0'],
    );
    for (const n of nodes) assert.equal(await deployed(n), jars.v1);
  });

  test('a health check failing on one node stops the batch and rolls back every node', async () => {
    const handle = await start({ sha256: jars.v2, nodes, batchSize: 3, healthCheck: 'app' });
    const r = await handle.result();
    await recordHistory(recorder, handle.workflowId, 'rollout-bundle-rolled-back');
    assert.equal(r.outcome, 'rolled-back');
    assert.equal(r.failures, 1);
    assert.match(r.reason ?? '', /127\.0\.0\.43 \(health check app failed .*app did not start/);
    assert.deepEqual(
      r.nodes.map((n) => [n.node, n.status]),
      nodes.map((n) => [n, 'rolled-back']),
    );
    for (const n of nodes) assert.equal(await deployed(n), jars.v1, `deploy folder of ${n}`);
    const rows = await table();
    assert.deepEqual(
      rows.map((row) => [row.node, row.version, row.sha256]),
      nodes.map((n) => [n, '1.0.0', jars.v1]),
    );
    const progress = await handle.query<Progress>('progress');
    assert.equal(progress.status, 'failed');
    assert.deepEqual(
      progress.steps.filter((s) => s.id.startsWith('rollback:')).map((s) => s.status),
      ['completed', 'completed', 'completed'],
    );
  });

  test('canary, then pause, approve, resume: nothing moves while paused', async () => {
    const handle = await start({ sha256: jars.v2, nodes, canary: 1, healthCheck: 'ok' });
    await waitFor('the canary to finish', async () => {
      // The rollout registers `bundles` once admitted (docs/design.md "Admission").
      const v = await handle.query<BundlesView>('bundles').catch(() => undefined);
      if (!v) return undefined;
      return v.phase === 'waiting-for-approval' ? v : undefined;
    });
    assert.deepEqual(await Promise.all(nodes.map(deployed)), [jars.v2, jars.v1, jars.v1]);
    await handle.signal('pause', 'checking the canary by hand');
    assert.match(
      await handle.executeUpdate<string, [{ by: string }]>('approve', { args: [{ by: 'alice' }] }),
      /approved/,
    );
    const paused = await waitFor('the approve step to complete', async () => {
      const p = await handle.query<Progress>('progress');
      return p.steps.find((s) => s.id === 'approve')?.status === 'completed' ? p : undefined;
    });
    assert.equal(paused.paused?.reason, 'checking the canary by hand');
    assert.equal(paused.steps.find((s) => s.id === `install:${failing}`)?.status, 'pending');
    assert.equal(await deployed(failing), jars.v1);
    await rejectsWith(handle.executeUpdate('approve', { args: [{}] }), /not waiting for approval/);
    await handle.signal('resume');
    const r = await handle.result();
    await recordHistory(recorder, handle.workflowId, 'rollout-bundle-canary-paused-approved');
    assert.equal(r.outcome, 'completed');
    assert.equal(r.approvedBy, 'alice');
    for (const n of nodes) assert.equal(await deployed(n), jars.v2);
  });

  test('an agent SIGKILLed mid-install and restarted: the rollout completes, no partial file', async () => {
    const victim = cluster.agents.get(killed);
    assert.ok(victim);
    const inHealthCheck = victim.waitForLine(/running health check/, 60_000);
    const handle = await start({ sha256: jars.v3, nodes, batchSize: 3, healthCheck: 'slow' });
    await inHealthCheck;
    victim.kill('SIGKILL');
    await victim.process;
    // What a kill during the fetch or the copy leaves behind; the restarted agent must clear it.
    const root = path.join(cluster.dir, 'nodes', killed, 'bundles');
    const partial = path.join(
      stagingFolderOf(path.join(root, 'deploy')),
      `${symbolicName}.dead.part`,
    );
    const incoming = path.join(root, 'store', '.incoming-dead.tmp');
    await mkdir(path.dirname(partial), { recursive: true });
    await Promise.all([writeFile(partial, 'half a jar'), writeFile(incoming, 'half a jar')]);
    await cluster.start(killed);
    const r = await handle.result();
    assert.equal(r.outcome, 'completed');
    assert.deepEqual(
      r.nodes.map((n) => [n.node, n.status, n.previous?.version]),
      nodes.map((n) => [n, 'installed', '2.0.0']),
    );
    // The restarted agent ran the install again: it found its own jar in place and checked again.
    // Agents log JSON lines (src/logger.ts).
    const checks = (cluster.lines.get(killed) ?? []).filter((l) => {
      try {
        const line = JSON.parse(l) as { msg?: string; name?: string };
        return line.msg === 'running health check' && line.name === 'slow';
      } catch {
        return false;
      }
    });
    assert.equal(checks.length, 2, checks.join('\n'));
    assert.deepEqual(
      (await readdir(path.join(root, 'store'))).filter((f) => f.startsWith('.')),
      [],
    );
    for (const n of nodes) {
      assert.equal(await deployed(n), jars.v3, `deploy folder of ${n}`);
      const deploy = path.join(cluster.dir, 'nodes', n, 'bundles', 'deploy');
      assert.deepEqual(await stagingLeftovers(deploy), [], `staging of ${n}`);
      // Only whole jars where the runtime looks.
      assert.deepEqual(await readdir(deploy), [`${symbolicName}.jar`]);
    }
  });

  test('a rejected canary is rolled back and the rest is not touched', async () => {
    const handle = await start({ sha256: jars.v2, nodes, canary: 1, healthCheck: 'ok' });
    await waitFor('the canary to finish', async () => {
      // The rollout registers `bundles` once admitted (docs/design.md "Admission").
      const v = await handle.query<BundlesView>('bundles').catch(() => undefined);
      if (!v) return undefined;
      return v.phase === 'waiting-for-approval' ? v : undefined;
    });
    assert.equal(await deployed(first), jars.v2);
    await handle.executeUpdate('approve', { args: [{ reject: 'reports render blank' }] });
    const r = await handle.result();
    assert.equal(r.outcome, 'rolled-back');
    assert.match(r.reason ?? '', /canary was rejected: reports render blank/);
    assert.deepEqual(
      r.nodes.map((n) => [n.node, n.status]),
      [
        [first, 'rolled-back'],
        [failing, 'not-started'],
        [killed, 'not-started'],
      ],
    );
    for (const n of nodes) assert.equal(await deployed(n), jars.v3, `deploy folder of ${n}`);
  });
});
