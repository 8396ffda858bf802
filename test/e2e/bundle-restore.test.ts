import assert from 'node:assert/strict';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { extractZip, zipFolder } from '../../src/archive/zip.js';
import { pushBundle } from '../../src/bundles/client.js';
import { readDesiredBundles } from '../../src/bundles/desired.js';
import { sha256OfFile } from '../../src/bundles/store.js';
import { startRunbook } from '../../src/client/index.js';
import type { RolloutBundleInput } from '../../src/contracts/bundles.js';
import type { ArchiveManifest } from '../../src/contracts/data-runbooks.js';
import { progressQuery } from '../../src/contracts/messages.js';
import { createLogger } from '../../src/logger.js';
import { createFelixAdapter, type FelixAdapter } from '../../src/middleware/felix/adapter.js';
import { repoRoot } from '../../src/process.js';
import { greeterBundles, type GreeterBundles } from '../helpers/felix-bundles.js';
import { failureOf, recordHistory, startStack, type Stack } from '../helpers/stack.js';

/**
 * The application's bundle set is part of a backup (docs/design.md, "The application's
 * bundles in a backup"), every part real: the Temporal dev server, the orchestrator, three agents
 * running ZooKeeper, Kafka and a Felix framework each (two members). Provider 1.0.0 is rolled out and backed
 * up; provider 1.1.0 and a consumer are rolled out; a copy of the backup whose provider jar was
 * replaced is refused by verifyBackup and restoreCluster with nothing changed; the backup itself
 * restored puts 1.0.0 back into every running framework (same pid), ACTIVE with its component
 * active, the consumer uninstalled, and the desired set says 1.0.0. Nodes: 127.0.0.251–.252 (.253 reserved for it).
 */

// Two members keep it short (a third costs Kafka's and ZooKeeper's forming most); .253 is kept free.
const nodes = ['127.0.0.251', '127.0.0.252'] as const;
const [n1] = nodes;
const clusterId = 'bundle-restore';
const api = 'com.example.greeter.api';
const provider = 'com.example.greeter.provider';
const consumer = 'com.example.greeter.consumer';
const log = (msg: string) => console.error(`[bundle-restore e2e] ${msg}`);

describe(
  'the bundle set in a backup: restored into the running frameworks',
  { timeout: 300_000 },
  () => {
    let stack: Stack;
    let jars: GreeterBundles;
    const sha: Partial<Record<keyof GreeterBundles, string>> = {};
    const felix = new Map<string, FelixAdapter>();
    const pids = new Map<string, number>();
    let backupId = '';

    before(async () => {
      const started = Date.now();
      [stack, jars] = await Promise.all([
        startStack([...nodes], { enabled: ['zookeeper', 'kafka', 'felix'] }),
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
      const logger = createLogger('bundle-restore-e2e', 'warn');
      for (const n of nodes) {
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
      log(`stack of 2 nodes up in ${Date.now() - started} ms`);
    });
    after(async () => {
      await stack?.close();
    });

    const listing = (n: string) => (felix.get(n) as FelixAdapter).management.list();
    const rollout = async (symbolicName: string, input: Omit<RolloutBundleInput, 'clusterId'>) => {
      const r = await (
        await startRunbook(stack.client, 'rolloutBundle', { clusterId, ...input }, { symbolicName })
      ).result();
      assert.equal(r.outcome, 'completed', r.reason);
    };
    const desired = async () =>
      (await readDesiredBundles(nodes.map((n) => `${n}:2181`).join(','))).map(
        (d) => `${d.symbolicName} ${d.version}`,
      );

    /** Every node's framework: exactly these versions, each ACTIVE with its components active. */
    async function assertRuns(expect: Record<string, string | undefined>): Promise<void> {
      for (const n of nodes) {
        const { pid, bundles } = await listing(n);
        assert.equal(pid, pids.get(n), `${n}: the framework was restarted`);
        for (const [name, version] of Object.entries(expect)) {
          const mine = bundles.filter((b) => b.symbolicName === name);
          if (version === undefined) {
            assert.deepEqual(mine, [], `${n}: ${name} should not be installed`);
            continue;
          }
          assert.deepEqual(
            mine.map((b) => `${b.version} ${b.state}`),
            [`${version} ACTIVE`],
            `${n}: ${name}`,
          );
          assert.ok(
            mine[0]?.components.every((c) => c.state === 'ACTIVE'),
            `${n}: ${name} components ${JSON.stringify(mine[0]?.components)}`,
          );
        }
      }
    }

    test('provider 1.0.0 is rolled out and backed up with the bundle set', async () => {
      let started = Date.now();
      const boot = await startRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: [...nodes],
      });
      assert.deepEqual((await boot.result()).nodes, [...nodes]);
      log(`bootstrap of 2 nodes in ${Date.now() - started} ms`);
      started = Date.now();
      await rollout(api, { sha256: sha.api ?? '', master: n1, batchSize: 2 });
      await rollout(provider, { sha256: sha.provider ?? '', master: n1, batchSize: 2 });
      log(`api and provider 1.0.0 rolled out in ${Date.now() - started} ms`);
      for (const n of nodes) pids.set(n, (await listing(n)).pid);
      await assertRuns({ [api]: '1.0.0', [provider]: '1.0.0' });

      started = Date.now();
      const backup = await (
        await startRunbook(stack.client, 'backupCluster', { clusterId, label: 'bundles' })
      ).result();
      log(`backup in ${Date.now() - started} ms`);
      await recordHistory(stack, `cg/${clusterId}/data`, 'backup-cluster-bundles');
      backupId = backup.backupId;
      assert.deepEqual(backup.plan, [{ node: n1, components: ['zookeeper', 'kafka', 'bundles'] }]);
      // The bundle set is the cluster's: its archive gets a second copy like the replicated data.
      assert.deepEqual(
        backup.copies?.map((c) => [c.from, c.node]),
        [[n1, nodes[1]]],
      );
    });

    test('provider 1.1.0 and a consumer are rolled out after the backup', async () => {
      await rollout(provider, { sha256: sha.provider11 ?? '', master: n1, batchSize: 2 });
      await rollout(consumer, { sha256: sha.consumer ?? '', master: n1, batchSize: 2 });
      await assertRuns({ [api]: '1.0.0', [provider]: '1.1.0', [consumer]: '1.0.0' });
      assert.deepEqual(await desired(), [`${api} 1.0.0`, `${provider} 1.1.0`, `${consumer} 1.0.0`]);
    });

    test('a backup whose provider jar is not the one it names is refused, nothing changed', async () => {
      const file = path.join(stack.layout(n1).archiveFolder('backup'), `${backupId}.zip`);
      const kept = `${file}.good`;
      await copyFile(file, kept);
      // The jar replaced by provider 1.1.0's and the archive's manifest rewritten to match: only
      // the bundle set can tell.
      const work = path.join(stack.dir, 'tamper');
      await extractZip(file, work);
      const jar = `bundles/jars/${sha.provider}.jar`;
      await copyFile(jars.provider11, path.join(work, jar));
      const manifest = JSON.parse(
        await readFile(path.join(work, 'manifest.json'), 'utf8'),
      ) as ArchiveManifest;
      const swapped = await sha256OfFile(path.join(work, jar));
      manifest.files = manifest.files.map((f) => (f.path === jar ? { ...f, ...swapped } : f));
      await writeFile(path.join(work, 'manifest.json'), JSON.stringify(manifest));
      await zipFolder(work, file);
      await rm(work, { recursive: true, force: true });
      try {
        const named = new RegExp(
          `${n1.replace(/\./g, '\\.')}.*bundle jar ${provider.replace(/\./g, '\\.')} 1\\.0\\.0 \\(${jar}\\) has sha256 ${swapped.sha256}`,
        );
        const verify = await failureOf(
          await startRunbook(stack.client, 'verifyBackup', { clusterId, backupId }),
        );
        assert.equal(verify.type, 'UnsafeArchive');
        assert.match(verify.message, named);
        const restore = await failureOf(
          await startRunbook(stack.client, 'restoreCluster', { clusterId, backupId }),
        );
        assert.equal(restore.type, 'UnsafeArchive');
        assert.match(restore.message, /nothing was changed/);
        assert.match(restore.message, named);
        await assertRuns({ [api]: '1.0.0', [provider]: '1.1.0', [consumer]: '1.0.0' });
        assert.deepEqual(await desired(), [
          `${api} 1.0.0`,
          `${provider} 1.1.0`,
          `${consumer} 1.0.0`,
        ]);
      } finally {
        await copyFile(kept, file);
        await rm(kept);
      }
    });

    test('the backup restored: every running framework runs 1.0.0 again, the consumer is gone', async () => {
      const started = Date.now();
      const handle = await startRunbook(stack.client, 'restoreCluster', { clusterId, backupId });
      const result = await handle.result();
      const ms = Date.now() - started;
      await recordHistory(stack, handle.workflowId, 'restore-cluster-bundles');
      assert.deepEqual(result.plan, [{ node: n1, components: ['zookeeper', 'kafka', 'bundles'] }]);
      await assertRuns({ [api]: '1.0.0', [provider]: '1.0.0', [consumer]: undefined });
      assert.deepEqual(await desired(), [`${api} 1.0.0`, `${provider} 1.0.0`]);
      // What the restore's time went to: each phase's span, and the longest steps.
      const { steps } = await handle.query(progressQuery);
      const timed = steps
        .filter((s) => s.startedAt && s.finishedAt)
        .map((s) => ({
          id: s.id,
          from: Date.parse(s.startedAt ?? ''),
          to: Date.parse(s.finishedAt ?? ''),
        }));
      const span = (...prefixes: string[]) => {
        const mine = timed.filter((s) => prefixes.some((p) => s.id.startsWith(p)));
        if (mine.length === 0) return 0;
        return Math.max(...mine.map((s) => s.to)) - Math.min(...mine.map((s) => s.from));
      };
      const phases = {
        checks: span('check:'),
        unpack: span('unpack:'),
        aside: span('aside-'),
        data: span('restore:'),
        health: span('health:'),
        frameworks: span('bundles:', 'bundles-now:', 'bundle:', 'unbundle:'),
      };
      const longest = timed
        .map((s) => ({ id: s.id, ms: s.to - s.from }))
        .sort((x, y) => y.ms - x.ms)
        .slice(0, 8);
      log(
        `restore in ${ms} ms; phases ${JSON.stringify(phases)}; longest steps: ` +
          longest.map((s) => `${s.id} ${s.ms}`).join(', '),
      );
      assert.ok(
        steps.some((s) => s.id === `unbundle:${n1}:${consumer}` && s.status === 'completed'),
        'the consumer was uninstalled by a step of the restore',
      );
    });
  },
);
