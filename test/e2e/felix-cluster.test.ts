import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { pushBundle } from '../../src/bundles/client.js';
import { readDesiredBundles } from '../../src/bundles/desired.js';
import type { RolloutBundleInput, RolloutBundleResult } from '../../src/contracts/bundles.js';
import { startRunbook } from '../../src/client/index.js';
import { createLogger } from '../../src/logger.js';
import { createFelixAdapter, type FelixAdapter } from '../../src/middleware/felix/adapter.js';
import type { FelixBundle } from '../../src/middleware/felix/client.js';
import { repoRoot } from '../../src/process.js';
import { greeterBundles, type GreeterBundles } from '../helpers/felix-bundles.js';
import { startStack, type Stack } from '../helpers/stack.js';

/**
 * Apache Felix in a cluster formed by the membership runbooks, every part real: the Temporal
 * dev server, the orchestrator, agents running ZooKeeper (where the desired bundle set lives)
 * and a Felix framework each (docs/bundles.md). A framework SIGKILLed in the middle of a bundle
 * update ends verified at the new version or rolled back to the old one, never in between; a
 * node that joins afterwards runs the cluster's desired set. Nodes: 127.0.0.171–.173.
 */

const [n1, n2, n3] = ['127.0.0.171', '127.0.0.172', '127.0.0.173'] as const;
const clusterId = 'felix-e2e';
const api = 'com.example.greeter.api';
const provider = 'com.example.greeter.provider';
const consumer = 'com.example.greeter.consumer';
const log = (msg: string) => console.error(`[felix e2e] ${msg}`);

describe(
  'Felix frameworks in a cluster: a kill mid-update, and convergence on join',
  {
    timeout: 600_000,
  },
  () => {
    let stack: Stack;
    let jars: GreeterBundles;
    const sha: Partial<Record<keyof GreeterBundles, string>> = {};
    const felix = new Map<string, FelixAdapter>();
    const logger = createLogger('felix-e2e', 'warn');

    before(async () => {
      [stack, jars] = await Promise.all([
        startStack([n1, n2, n3], { enabled: ['zookeeper', 'felix'] }),
        greeterBundles(),
      ]);
      const config = parse(await readFile(path.join(stack.dir, 'agent.yaml'), 'utf8')) as {
        middleware: { felix: { managementPort: number } };
      };
      for (const key of ['api', 'provider', 'provider11', 'consumer'] as const) {
        const pushed = await pushBundle(
          { url: `http://${n1}:${stack.agentPort}`, token: stack.token },
          jars[key],
        );
        sha[key] = pushed.sha256;
      }
      for (const n of [n1, n2, n3]) {
        felix.set(
          n,
          createFelixAdapter({
            address: n,
            layout: stack.layout(n),
            binDir: path.join(repoRoot, '.tools'),
            logger,
            options: { managementPort: config.middleware.felix.managementPort },
          }),
        );
      }
    });
    after(async () => {
      await stack?.close();
    });

    const fw = (n: string) => felix.get(n) as FelixAdapter;
    const listing = (n: string) => fw(n).management.list();
    const lastGreeting = async (n: string) =>
      (await readFile(fw(n).logFile, 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('greeter consumer got:'))
        .at(-1);
    const rollout = async (
      symbolicName: string,
      input: Omit<RolloutBundleInput, 'clusterId'>,
    ): Promise<RolloutBundleResult> =>
      (
        await startRunbook(stack.client, 'rolloutBundle', { clusterId, ...input }, { symbolicName })
      ).result();

    /** What a framework runs, with nothing half done: one bundle per name, every one ACTIVE. */
    async function assertWhole(n: string, expect: Record<string, string>): Promise<void> {
      const { bundles } = await listing(n);
      const notActive = bundles.filter((b: FelixBundle) => b.state !== 'ACTIVE');
      assert.deepEqual(
        notActive.map((b) => `${b.symbolicName} ${b.state}`),
        [],
        n,
      );
      for (const [name, version] of Object.entries(expect)) {
        const mine = bundles.filter((b) => b.symbolicName === name);
        assert.deepEqual(
          mine.map((b) => b.version),
          [version],
          `${n}: ${name}`,
        );
        assert.ok(
          mine[0]?.components.every((c) => c.state === 'ACTIVE'),
          `${n}: ${name} components ${JSON.stringify(mine[0]?.components)}`,
        );
      }
    }

    /**
     * Starts a provider rollout to n1 and n2 (n2 second) and SIGKILLs n2's framework while the
     * update runs there: the new revision's component is activating (the fixture makes it slow,
     * see test/fixtures/felix-bundles), inside the management bundle's install call. Resolves to
     * the rollout's result and how long the framework took to answer again.
     */
    async function killMidUpdate(input: Omit<RolloutBundleInput, 'clusterId'>) {
      const marker = path.join(stack.layout(n2).nodeDataRoot, 'felix', 'greeter-slow-activation');
      const killedPid = (await listing(n2)).pid;
      const logBefore = (await readFile(fw(n2).logFile, 'utf8')).length;
      await writeFile(marker, '20000');
      const handle = await startRunbook(
        stack.client,
        'rolloutBundle',
        { clusterId, ...input },
        { symbolicName: provider },
      );
      const deadline = Date.now() + 120_000;
      while (
        !(await readFile(fw(n2).logFile, 'utf8')).slice(logBefore).includes('activating slowly')
      ) {
        assert.ok(Date.now() < deadline, 'the update on n2 never reached the activation');
        await sleep(100);
      }
      const agentLines = stack.lines.get(`agent ${n2}`) ?? [];
      const linesBefore = agentLines.length;
      process.kill(killedPid, 'SIGKILL');
      const killedAt = Date.now();
      await rm(marker);
      log(`SIGKILLed the framework of ${n2} (pid ${killedPid}) in the middle of the update`);
      // The step that failed on it starts it again (the agent supervises it).
      let restartMs = 0;
      for (;;) {
        const pid = await listing(n2).then(
          (l) => l.pid,
          () => undefined,
        );
        if (pid !== undefined && pid !== killedPid) {
          restartMs = Date.now() - killedAt;
          break;
        }
        assert.ok(Date.now() < killedAt + 120_000, 'the framework was not started again');
        await sleep(100);
      }
      const result = await handle.result();
      // The start itself (JVM, bundle cache, readiness), as the agent that made it logged it.
      const startMs = agentLines
        .slice(linesBefore)
        .map((l) =>
          l.includes('"felix started"') ? (JSON.parse(l) as { ms?: number }).ms : undefined,
        )
        .filter((ms) => ms !== undefined)
        .at(-1);
      log(
        `framework of ${n2}: answering again ${restartMs} ms after the SIGKILL (its start took ${startMs} ms)`,
      );
      return { result, killedPid };
    }

    test('two nodes bootstrap; api, provider 1.0.0 and consumer roll out; desired in ZooKeeper', async () => {
      const started = Date.now();
      const boot = await startRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: [n1, n2],
      });
      assert.deepEqual((await boot.result()).nodes, [n1, n2]);
      log(`bootstrap of 2 nodes in ${Date.now() - started} ms`);
      for (const [name, key] of [
        [api, 'api'],
        [provider, 'provider'],
        [consumer, 'consumer'],
      ] as const) {
        const r = await rollout(name, { sha256: sha[key] ?? '', master: n1, batchSize: 2 });
        assert.equal(r.outcome, 'completed', r.reason);
      }
      for (const n of [n1, n2]) {
        await assertWhole(n, { [api]: '1.0.0', [provider]: '1.0.0', [consumer]: '1.0.0' });
        assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.0.0');
      }
      const desired = await readDesiredBundles(`${n1}:2181`);
      assert.deepEqual(
        desired.map((d) => [d.symbolicName, d.version]),
        [
          [api, '1.0.0'],
          [provider, '1.0.0'],
          [consumer, '1.0.0'],
        ],
      );
    });

    test('a framework SIGKILLed mid-update with one attempt: the node is not reported installed, 1.0.0 is put back', async () => {
      const { result, killedPid } = await killMidUpdate({
        sha256: sha.provider11 ?? '',
        master: n1,
        stepAttempts: 1,
      });
      assert.equal(result.outcome, 'rolled-back');
      assert.deepEqual(
        result.nodes.map((r) => [r.node, r.status]),
        [
          [n1, 'rolled-back'],
          [n2, 'rolled-back'],
        ],
      );
      assert.match(
        result.reason ?? '',
        new RegExp(`${n2.replace(/\./g, '\\.')} .*does not answer`),
      );
      assert.notEqual((await listing(n2)).pid, killedPid);
      for (const n of [n1, n2]) {
        await assertWhole(n, { [provider]: '1.0.0', [consumer]: '1.0.0' });
        assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.0.0');
      }
      const desired = await readDesiredBundles(`${n1}:2181`);
      assert.equal(desired.find((d) => d.symbolicName === provider)?.version, '1.0.0');
    });

    test('a framework SIGKILLed mid-update is started again and the retried step verifies 1.1.0', async () => {
      const { result, killedPid } = await killMidUpdate({
        sha256: sha.provider11 ?? '',
        master: n1,
      });
      assert.equal(result.outcome, 'completed', result.reason);
      assert.deepEqual(
        result.nodes.map((r) => [r.node, r.status, r.previous?.version]),
        [
          [n1, 'installed', '1.0.0'],
          [n2, 'installed', '1.0.0'],
        ],
      );
      assert.notEqual((await listing(n2)).pid, killedPid);
      for (const n of [n1, n2]) {
        await assertWhole(n, { [provider]: '1.1.0', [consumer]: '1.0.0' });
        assert.equal(await lastGreeting(n), 'greeter consumer got: hello from provider 1.1.0');
      }
      const desired = await readDesiredBundles(`${n1}:2181`);
      assert.equal(desired.find((d) => d.symbolicName === provider)?.version, '1.1.0');
    });

    test('a third node joins: its framework runs the desired set, fetched from the members', async () => {
      const started = Date.now();
      const join = await startRunbook(stack.client, 'joinNode', {
        clusterId,
        node: n3,
        master: n1,
      });
      assert.deepEqual((await join.result()).nodes, [n1, n2, n3]);
      log(`join with convergence in ${Date.now() - started} ms`);
      await assertWhole(n3, { [api]: '1.0.0', [provider]: '1.1.0', [consumer]: '1.0.0' });
      assert.equal(await lastGreeting(n3), 'greeter consumer got: hello from provider 1.1.0');
    });
  },
);
