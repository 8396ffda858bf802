import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { pushBundle } from '../../src/bundles/client.js';
import type { RolloutBundleInput, RolloutBundleResult } from '../../src/contracts/bundles.js';
import { NodeLayout } from '../../src/config/layout.js';
import { createLogger } from '../../src/logger.js';
import { createFelixAdapter, type FelixAdapter } from '../../src/middleware/felix/adapter.js';
import { findBundle } from '../../src/middleware/felix/verify.js';
import { repoRoot } from '../../src/process.js';
import { rolloutStatus, startRunbook } from '../../src/client/index.js';
import { clusterBundles } from '../../src/bundles/view.js';
import { bundleViewRows } from '../../src/contracts/bundle-view.js';
import { freePortOnAll, startTestCluster, type TestCluster } from '../helpers/agents.js';
import { greeterBundles, type GreeterBundles } from '../helpers/felix-bundles.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

// The orchestrator's whole bundle: a rollout asks the cluster's admission workflow first.
// Felix nodes of this suite: 127.0.0.101–.103.
const nodes = ['127.0.0.101', '127.0.0.102', '127.0.0.103'];
const [first = '', second = '', third = ''] = nodes;
const provider = 'com.example.greeter.provider';
const binDir = path.join(repoRoot, '.tools');
const logger = createLogger('felix-rollout-test', 'warn');

const configDir = await mkdtemp(path.join(os.tmpdir(), 'cg-felix-config-'));
const managementPort = await freePortOnAll(nodes);
await Promise.all(
  nodes.map((n) =>
    writeFile(
      path.join(configDir, `${n}.yaml`),
      stringify({
        events: { enabled: false },
        middleware: { enabled: ['felix'], felix: { managementPort, heapMb: 96 } },
        // Slow on one node, so that a test can kill that agent after the framework update.
        bundles: {
          healthChecks: { slow: { command: n === third ? ['sleep', '3'] : ['true'] } },
        },
      }),
    ),
  ),
);

describe('rolloutBundle into real Felix frameworks on three agents', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let jars: GreeterBundles;
  const sha: Record<keyof GreeterBundles, string> = {
    api: '',
    provider: '',
    provider11: '',
    providerBroken: '',
    consumer: '',
    unresolvable: '',
  };
  const clusterId = `felix-test-${process.pid}`;
  const felix = new Map<string, FelixAdapter>();

  before(async () => {
    [orchestrator, cluster, jars] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster(nodes, {
        env: (address) => ({
          CG_CONFIG: path.join(configDir, `${address}.yaml`),
          CG_MIDDLEWARE__BIN_DIR: binDir,
        }),
      }),
      greeterBundles(),
    ]);
    for (const key of Object.keys(sha) as (keyof GreeterBundles)[]) {
      const pushed = await pushBundle(
        { url: `http://${first}:${cluster.port}`, token: cluster.token },
        jars[key],
      );
      sha[key] = pushed.sha256;
    }
    for (const n of nodes) {
      felix.set(
        n,
        createFelixAdapter({
          address: n,
          layout: new NodeLayout(path.join(cluster.dir, 'nodes', n)),
          binDir,
          logger,
          options: { managementPort },
        }),
      );
    }
  });
  after(async () => {
    // The frameworks outlive their agents by design: stopped here, before their pid files go.
    await Promise.all([...felix.values()].map((f) => f.stopServer({ force: true })));
    await Promise.all([orchestrator?.close(), cluster?.close()]);
    await rm(configDir, { recursive: true, force: true });
  });

  const fw = (n: string) => felix.get(n) as FelixAdapter;
  const rollout = async (
    symbolicName: string,
    input: Omit<RolloutBundleInput, 'clusterId'>,
  ): Promise<RolloutBundleResult> =>
    (
      await startRunbook(
        orchestrator.client,
        'rolloutBundle',
        { clusterId, agentTimeoutSeconds: 20, ...input },
        { symbolicName, taskQueue: orchestrator.taskQueue },
      )
    ).result();
  const running = async (n: string, name: string) =>
    findBundle((await fw(n).management.list()).bundles, name);
  const pid = async (n: string) => (await fw(n).management.list()).pid;
  const lastGreeting = async (n: string) =>
    (await readFile(fw(n).logFile, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('greeter consumer got:'))
      .at(-1);

  test('api, provider 1.0.0 and consumer roll out into a framework the agents start', async () => {
    for (const [name, key] of [
      ['com.example.greeter.api', 'api'],
      [provider, 'provider'],
      ['com.example.greeter.consumer', 'consumer'],
    ] as const) {
      const r = await rollout(name, { sha256: sha[key], nodes, batchSize: 3 });
      assert.equal(r.outcome, 'completed', r.reason);
    }
    for (const n of nodes) {
      assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.0.0');
    }
  });

  test('provider 1.0.0 → 1.1.0 is hot-swapped on every node: same framework, consumer sees 1.1.0', async () => {
    const pids = await Promise.all(nodes.map(pid));
    const ids = await Promise.all(nodes.map(async (n) => (await running(n, provider))?.id));
    const t0 = Date.now();
    const r = await rollout(provider, { sha256: sha.provider11, nodes });
    console.error(
      `[measure] rollout of one bundle to 3 Felix nodes, one by one: ${Date.now() - t0} ms`,
    );
    assert.equal(r.outcome, 'completed', r.reason);
    assert.deepEqual(
      r.nodes.map((n) => [n.status, n.previous?.version]),
      nodes.map(() => ['installed', '1.0.0']),
    );
    assert.deepEqual(await Promise.all(nodes.map(pid)), pids, 'framework pids unchanged');
    for (const [i, n] of nodes.entries()) {
      const b = await running(n, provider);
      assert.equal(b?.id, ids[i], 'updated in place: same bundle id');
      assert.equal(b?.version, '1.1.0');
      assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.1.0');
    }
  });

  test('the bundles view: node × bundle from every framework, in the query and from the agents', async () => {
    const view = await rolloutStatus(orchestrator.client, clusterId, provider);
    const rows = (view.table ?? []).filter((r) => r.symbolicName === provider);
    assert.deepEqual(
      rows.map((r) => [r.node, r.version, r.state, r.desired, r.drift]),
      nodes.map((n) => [n, '1.1.0', 'ACTIVE', '1.1.0', []]),
    );
    assert.ok(rows.every((r) => r.components.some((c) => c.endsWith(' ACTIVE'))));
    // These agents run no ZooKeeper: the rollout says the desired set was not recorded.
    assert.match(view.desiredError ?? '', /runs no ZooKeeper/);
    // What `clusterguard bundle list` asks: GET /v1/bundles of each agent, with the framework.
    const perNode = await clusterBundles({ nodes, port: cluster.port, token: cluster.token });
    const live = bundleViewRows(perNode).filter((r) => r.symbolicName === provider);
    assert.deepEqual(
      live.map((r) => [r.node, r.version, r.state, r.drift]),
      nodes.map((n) => [n, '1.1.0', 'ACTIVE', []]),
    );
  });

  test('a provider whose component throws on activation fails the step and is undone: 1.1.0 runs', async () => {
    const r = await rollout(provider, { sha256: sha.providerBroken, nodes });
    assert.equal(r.outcome, 'rolled-back');
    assert.match(
      r.reason ?? '',
      /127\.0\.0\.101 .*component com\.example\.greeter\.provider failed to activate: java\.lang\.IllegalStateException: greeter provider 1\.2\.0 refuses to activate.*previous version 1\.1\.0 was put back and runs/,
    );
    assert.deepEqual(
      r.nodes.map((n) => n.status),
      ['failed', 'not-started', 'not-started'],
    );
    for (const n of nodes) {
      const b = await running(n, provider);
      assert.equal(b?.version, '1.1.0');
      assert.deepEqual(
        b?.components.map((c) => c.state),
        ['ACTIVE'],
      );
      assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.1.0');
    }
  });

  test('an unresolvable bundle fails with the missing package and leaves nothing installed', async () => {
    const r = await rollout('com.example.greeter.unresolvable', {
      sha256: sha.unresolvable,
      nodes,
    });
    assert.equal(r.outcome, 'rolled-back');
    assert.match(
      r.reason ?? '',
      /imports com\.example\.nowhere, which no bundle in the framework exports.*uninstalled again/,
    );
    for (const n of nodes) {
      assert.equal(await running(n, 'com.example.greeter.unresolvable'), undefined, n);
    }
  });

  test('skip-when-current asks the framework: only the node whose framework lost 1.1.0 is installed', async () => {
    // Behind the agent's back, the third framework now runs the failing 1.2.0.
    await fw(third).management.install(jars.providerBroken, 20_000);
    const r = await rollout(provider, { sha256: sha.provider11, nodes });
    assert.equal(r.outcome, 'completed', r.reason);
    assert.deepEqual(r.plan.upToDate, [first, second]);
    assert.deepEqual(r.plan.batches, [[third]]);
    assert.equal((await running(third, provider))?.components[0]?.state, 'ACTIVE');
  });

  test('a lower version is refused unless allowDowngrade; a killed framework is restarted by the step', async () => {
    const refused = await rollout(provider, { sha256: sha.provider, nodes });
    assert.equal(refused.outcome, 'rolled-back');
    assert.match(
      refused.reason ?? '',
      /runs com\.example\.greeter\.provider 1\.1\.0, higher than 1\.0\.0: refusing to downgrade/,
    );
    assert.equal((await running(first, provider))?.version, '1.1.0');

    const killedPid = await pid(second);
    await fw(second).stopServer({ force: true });
    const r = await rollout(provider, { sha256: sha.provider, nodes, allowDowngrade: true });
    assert.equal(r.outcome, 'completed', r.reason);
    assert.notEqual(await pid(second), killedPid);
    for (const n of nodes) {
      assert.equal((await running(n, provider))?.version, '1.0.0');
      assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.0.0');
    }
  });

  test('an agent SIGKILLed after its framework update converges when restarted; the framework lives on', async () => {
    const victim = cluster.agents.get(third);
    assert.ok(victim);
    const frameworkPid = await pid(third);
    const inHealthCheck = victim.waitForLine(/running health check/, 60_000);
    const handle = await startRunbook(
      orchestrator.client,
      'rolloutBundle',
      {
        clusterId,
        agentTimeoutSeconds: 20,
        sha256: sha.provider11,
        nodes,
        batchSize: 3,
        healthCheck: 'slow',
      },
      { symbolicName: provider, taskQueue: orchestrator.taskQueue },
    );
    await inHealthCheck;
    victim.kill('SIGKILL');
    await victim.process;
    await cluster.start(third);
    const r = await handle.result();
    assert.equal(r.outcome, 'completed', r.reason);
    assert.deepEqual(
      r.nodes.map((n) => [n.status, n.previous?.version]),
      nodes.map(() => ['installed', '1.0.0']),
    );
    assert.equal(await pid(third), frameworkPid, 'the framework outlives its agent');
    for (const n of nodes) {
      assert.equal((await running(n, provider))?.version, '1.1.0');
      assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.1.0');
    }
  });
});
