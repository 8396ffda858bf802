import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NodeLayout } from '../../src/config/layout.js';
import { createLogger } from '../../src/logger.js';
import { createFelixAdapter, type FelixAdapter } from '../../src/middleware/felix/adapter.js';
import { findBundle, reportProblems } from '../../src/middleware/felix/verify.js';
import { repoRoot } from '../../src/process.js';
import { greeterBundles, type GreeterBundles } from '../helpers/felix-bundles.js';

const logger = createLogger('felix-test', 'warn');
const binDir = path.join(repoRoot, '.tools');
// Felix nodes of this suite: 127.0.0.101–.103.
const address = '127.0.0.101';

describe('Felix adapter: a real framework and the management bundle', () => {
  let root: string;
  let felix: FelixAdapter;
  let jars: GreeterBundles;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-felix-'));
    jars = await greeterBundles();
    felix = createFelixAdapter({
      address,
      layout: new NodeLayout(root),
      binDir,
      logger,
      options: { managementPort: 17701, heapMb: 96 },
    });
  });
  after(async () => {
    await felix?.stopServer();
    await rm(root, { recursive: true, force: true });
  });

  const consumerLines = async () =>
    (await readFile(felix.logFile, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('greeter consumer got:'));

  test('starts, answers only with its secret, and restarts idempotently', async () => {
    const t0 = Date.now();
    const status = await felix.startServer();
    console.error(`[measure] Felix framework start: ${Date.now() - t0} ms`);
    assert.equal(status.healthy, true, status.detail);
    const listing = await felix.management.list();
    assert.equal(listing.pid, status.pid);
    for (const name of [
      'org.apache.felix.scr',
      'org.apache.felix.configadmin',
      'io.clusterguard.felix.agent',
    ]) {
      assert.equal(findBundle(listing.bundles, name)?.state, 'ACTIVE', name);
    }
    const res = await fetch(`http://${address}:17701/v1/bundles`, {
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(res.status, 401);
    // Bound to the node's address only.
    await assert.rejects(fetch('http://127.0.0.1:17701/v1/bundles'));
    const again = await felix.startServer();
    assert.equal(again.pid, status.pid);
  });

  test('installs api, provider 1.0.0 and consumer; hot-swaps the provider to 1.1.0 in place', async () => {
    const m = felix.management;
    for (const jar of [jars.api, jars.provider, jars.consumer]) {
      const r = await m.install(jar, 20_000);
      assert.equal(r.action, 'installed');
      assert.deepEqual(reportProblems(r, r.bundle?.version ?? ''), []);
    }
    assert.deepEqual(await consumerLines(), ['greeter consumer got: hello from provider 1.0.0']);
    const before = await m.list();
    const providerId = findBundle(before.bundles, 'com.example.greeter.provider')?.id;
    const t0 = Date.now();
    const r = await m.install(jars.provider11, 20_000);
    console.error(`[measure] one hot swap (update, refresh, start, settle): ${Date.now() - t0} ms`);
    assert.equal(r.action, 'updated');
    assert.deepEqual(reportProblems(r, '1.1.0'), []);
    assert.equal(r.bundle?.id, providerId, 'Bundle.update keeps the id');
    // Only the provider is wired to its old revision: the consumer imports the api bundle.
    assert.deepEqual(r.refreshed, [providerId]);
    const after = await m.list();
    assert.equal(after.pid, before.pid, 'same framework process');
    assert.equal((await consumerLines()).at(-1), 'greeter consumer got: hello from provider 1.1.0');
  });

  test('a provider whose component throws is ACTIVE yet reported failed; putting 1.1.0 back repairs', async () => {
    const m = felix.management;
    const r = await m.install(jars.providerBroken, 20_000);
    assert.equal(r.bundle?.state, 'ACTIVE');
    const problems = reportProblems(r, '1.2.0');
    assert.equal(problems.length, 1, problems.join('; '));
    assert.match(
      problems[0] ?? '',
      /component com\.example\.greeter\.provider failed to activate: java\.lang\.IllegalStateException: greeter provider 1\.2\.0 refuses to activate/,
    );
    const consumer = findBundle((await m.list()).bundles, 'com.example.greeter.consumer');
    // The consumer cannot get the service either (SCR leaves it satisfied but not active).
    assert.notEqual(consumer?.components[0]?.state, 'ACTIVE');
    const back = await m.install(jars.provider11, 20_000);
    assert.deepEqual(reportProblems(back, '1.1.0'), []);
    const repaired = findBundle((await m.list()).bundles, 'com.example.greeter.consumer');
    assert.equal(repaired?.components[0]?.state, 'ACTIVE');
    assert.equal((await consumerLines()).at(-1), 'greeter consumer got: hello from provider 1.1.0');
  });

  test('an unresolvable bundle is reported with the missing package, and uninstalls cleanly', async () => {
    const m = felix.management;
    const r = await m.install(jars.unresolvable, 20_000);
    assert.equal(r.bundle?.state, 'INSTALLED');
    const problems = reportProblems(r, '1.0.0');
    assert.match(
      problems.join('; '),
      /imports com\.example\.nowhere, which no bundle in the framework exports/,
    );
    const u = await m.uninstall('com.example.greeter.unresolvable', 20_000);
    assert.equal(u.action, 'uninstalled');
    assert.equal(
      findBundle((await m.list()).bundles, 'com.example.greeter.unresolvable'),
      undefined,
    );
  });

  test('what was installed survives a killed framework', async () => {
    const before = await felix.checkServer();
    await felix.stopServer({ force: true });
    assert.equal((await felix.checkServer()).running, false);
    const status = await felix.startServer();
    assert.notEqual(status.pid, before.pid);
    const provider = findBundle(
      (await felix.management.list()).bundles,
      'com.example.greeter.provider',
    );
    assert.equal(provider?.version, '1.1.0');
    assert.equal(provider?.state, 'ACTIVE');
    assert.equal(provider?.components[0]?.state, 'ACTIVE');
  });
});
