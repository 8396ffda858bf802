import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { zookeeper } from '../../src/middleware/zookeeper/client.js';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { createLogger } from '../../src/logger.js';
import {
  assignMemberIds,
  writeFiles,
  type AdapterDeps,
  type ClusterView,
  type MiddlewareAdapter,
} from '../../src/middleware/kit/index.js';
import {
  applyZooKeeperConfig,
  createZooKeeperAdapter,
  generateZooKeeperConfig,
  parseEnsembleConfig,
  withZooKeeperClient,
  type ZooKeeperOptions,
} from '../../src/middleware/zookeeper/index.js';
import { repoRoot } from '../../src/process.js';
import { middlewareContract, type ContractNode } from './contract.js';

const logger = createLogger('zookeeper-test', 'warn');
const cleanups: (() => Promise<void>)[] = [];

const binDir = process.env.CG_ZOOKEEPER_BIN_DIR ?? path.join(repoRoot, '.tools');

interface TestNode {
  address: string;
  layout: NodeLayout;
  adapter: MiddlewareAdapter;
  deps: AdapterDeps<ZooKeeperOptions>;
}

const started: TestNode[] = [];

async function makeNode(
  address: string,
  extra: Partial<AdapterDeps<ZooKeeperOptions>> = {},
): Promise<TestNode> {
  const root = await mkdtemp(path.join(os.tmpdir(), `cg-zk-${address}-`));
  const deps: AdapterDeps<ZooKeeperOptions> = {
    address,
    layout: new NodeLayout(root),
    binDir,
    logger,
    ...extra,
  };
  const node = { address, layout: deps.layout, adapter: createZooKeeperAdapter(deps), deps };
  started.push(node);
  return node;
}

async function removeNode(node: TestNode): Promise<void> {
  await node.adapter.stopServer({ force: true }).catch(() => undefined);
  // CG_KEEP_ZOOKEEPER_ROOTS=1 keeps the nodes' folders (logs, configs) for a post-mortem.
  if (!process.env.CG_KEEP_ZOOKEEPER_ROOTS)
    await rm(node.layout.root, { recursive: true, force: true });
}

function view(nodes: string[], previous: Record<string, number> = {}): ClusterView {
  return {
    nodes,
    decommissionNodes: [],
    memberIds: assignMemberIds(nodes, previous),
    clusterUuid: 'zk-test-cluster-uuid-0',
  };
}

function contractNode(node: TestNode): ContractNode {
  return {
    adapter: node.adapter,
    restartedAgent: () => createZooKeeperAdapter({ ...node.deps }),
    cleanup: () => removeNode(node),
  };
}

after(async () => {
  // Whatever failed, no server outlives the file.
  await Promise.all(started.map(removeNode));
  for (const cleanup of cleanups) await cleanup();
});

middlewareContract({
  name: 'zookeeper',
  async working() {
    const node = await makeNode('127.0.0.11');
    await applyZooKeeperConfig(
      node.layout,
      generateZooKeeperConfig(view([node.address]), node.address),
      { wipeData: true },
    );
    return contractNode(node);
  },
  async crashing() {
    const node = await makeNode('127.0.0.11');
    const files = generateZooKeeperConfig(view([node.address]), node.address);
    // QuorumPeerMain answers with "Invalid config, exiting abnormally" and exit code 2.
    files['zoo.cfg'] = files['zoo.cfg']!.replace(/^tickTime=.*$/m, 'tickTime=not-a-number');
    await applyZooKeeperConfig(node.layout, files, { wipeData: true });
    return contractNode(node);
  },
  async neverReady() {
    const node = await makeNode('127.0.0.11', {
      operationOptions: { startServer: { timeoutMs: 5000 } },
    });
    // A two-voter ensemble whose other member never exists: it runs, but never has a quorum.
    await applyZooKeeperConfig(
      node.layout,
      generateZooKeeperConfig(view([node.address, '127.0.0.12']), node.address),
      { wipeData: true },
    );
    return contractNode(node);
  },
});

type Client = Parameters<Parameters<typeof withZooKeeperClient>[2]>[0];

const zk = (address: string) => `${address}:2181`;

function put(client: Client, p: string, data: Buffer, ephemeral = false): Promise<void> {
  return new Promise((resolve, reject) =>
    client.create(
      p,
      data,
      ephemeral ? zookeeper.CreateMode.EPHEMERAL : zookeeper.CreateMode.PERSISTENT,
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

function get(client: Client, p: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) =>
    client.getData(p, (err, data) => {
      if (!err) resolve(data ?? Buffer.alloc(0));
      else if ((err as { code?: number }).code === zookeeper.Exception.NO_NODE) resolve(undefined);
      else reject(err);
    }),
  );
}

/** Reads through another server until the write has reached it (clients see followers lag). */
async function eventually(address: string, p: string, timeoutMs = 10_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = await withZooKeeperClient(zk(address), 10_000, (c) => get(c, p));
    if (data !== undefined) return data;
    if (Date.now() > deadline) assert.fail(`${p} never appeared on ${address}`);
    await sleep(250);
  }
}

async function ensembleConfig(address: string) {
  const data = await withZooKeeperClient(zk(address), 10_000, (c) => get(c, '/zookeeper/config'));
  return parseEnsembleConfig(data?.toString('utf8') ?? '');
}

/** Resident memory of the processes, in MiB, from ps. */
async function rssMiB(pids: number[]): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'rss=', '-p', pids.join(',')]);
  return stdout
    .trim()
    .split(/\s+/)
    .map((kb) => Math.round(Number(kb) / 1024));
}

const isUnsafe = (pattern: RegExp) => (err: unknown) =>
  err instanceof ClusterGuardError &&
  err.type === 'UnsafeMembershipChange' &&
  pattern.test(err.message);

describe('ZooKeeper ensemble on 127.0.0.11–.13', () => {
  const addresses = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];
  const nodes = new Map<string, TestNode>();
  const node = (address: string) => nodes.get(address)!;
  const cluster = view(addresses);
  const pair = view(['127.0.0.11', '127.0.0.12'], cluster.memberIds);

  before(async () => {
    for (const address of addresses) nodes.set(address, await makeNode(address));
  });

  test('createCluster on the master and joinCluster on the others form a 3-node ensemble', async (t) => {
    const master = node('127.0.0.11');
    await master.adapter.createCluster!(cluster);
    for (const address of addresses) {
      await access(path.join(master.layout.clusterConfigFor(address, 'zookeeper'), 'zoo.cfg'));
    }
    // As the joiners' agents would download and unpack their archives from the master.
    for (const address of addresses.slice(1)) {
      await cp(
        master.layout.clusterConfigFor(address),
        node(address).layout.clusterConfigFor(address),
        {
          recursive: true,
        },
      );
    }
    await Promise.all(addresses.slice(1).map((a) => node(a).adapter.joinCluster!(cluster)));

    const statuses = await Promise.all(addresses.map((a) => node(a).adapter.checkServer()));
    for (const s of statuses) assert.equal(s.healthy, true, s.detail);
    const modes = statuses.map((s) => s.detail.split(',')[0]).sort();
    assert.deepEqual(modes, ['follower', 'follower', 'leader']);
    const rss = await rssMiB(statuses.map((s) => s.pid!));
    t.diagnostic(
      `RSS of the 3 servers: ${rss.join(' + ')} = ${rss.reduce((a, b) => a + b, 0)} MiB`,
    );
  });

  test('data written through one member is read from another', async () => {
    await withZooKeeperClient(zk('127.0.0.11'), 10_000, async (c) => {
      await put(c, '/cg', Buffer.alloc(0));
      await put(c, '/cg/greeting', Buffer.from('written on .11'));
    });
    assert.equal((await eventually('127.0.0.13', '/cg/greeting')).toString(), 'written on .11');
  });

  test('decommission removes a member by reconfig while the other two keep serving', async () => {
    // Run by the leaving node's agent: it reconfigures through a survivor, then stops itself.
    await node('127.0.0.13').adapter.decommissionCluster!(pair, ['127.0.0.13']);
    assert.equal((await node('127.0.0.13').adapter.checkServer()).running, false);
    const config = await ensembleConfig('127.0.0.11');
    assert.deepEqual(config.members.map((m) => m.host).sort(), ['127.0.0.11', '127.0.0.12']);

    await withZooKeeperClient(zk('127.0.0.12'), 10_000, (c) =>
      put(c, '/cg/after-remove', Buffer.from('two members')),
    );
    assert.equal((await eventually('127.0.0.11', '/cg/after-remove')).toString(), 'two members');
    // Repeating the decommission (an activity retry) finds nothing left to do.
    await node('127.0.0.11').adapter.decommissionCluster!(pair, ['127.0.0.13']);
  });

  test('a decommission that would lose the majority is refused', async () => {
    await assert.rejects(
      node('127.0.0.11').adapter.decommissionCluster!(view(['127.0.0.11'], cluster.memberIds), [
        '127.0.0.12',
      ]),
      isUnsafe(
        /127\.0\.0\.12 \(id 2\).*1 of the 2 voters.*127\.0\.0\.11 \(id 1\).*join replacement/s,
      ),
    );
    for (const a of ['127.0.0.11', '127.0.0.12']) {
      const status = await node(a).adapter.checkServer();
      assert.equal(status.healthy, true, status.detail);
    }
    assert.equal((await ensembleConfig('127.0.0.12')).members.length, 2);
  });

  test('a rejoined member keeps its data and catches up with what was written while it was out', async (t) => {
    const returning = node('127.0.0.13');
    await withZooKeeperClient(zk('127.0.0.11'), 10_000, (c) =>
      put(c, '/cg/while-out', Buffer.from('missed by .13')),
    );
    const stale = path.join(returning.layout.nodeDataFolder('zookeeper'), 'stale-marker');
    await writeFile(stale, 'from before');
    // The master's new archive for the returning node, as downloaded.
    await writeFiles(
      returning.layout.clusterConfigFor('127.0.0.13', 'zookeeper'),
      generateZooKeeperConfig(cluster, '127.0.0.13'),
    );
    await returning.adapter.rejoinCluster!(cluster);

    // Several members rejoining at once with emptied folders could elect an empty leader.
    await access(stale);
    assert.equal((await eventually('127.0.0.13', '/cg/while-out')).toString(), 'missed by .13');
    const config = await ensembleConfig('127.0.0.11');
    assert.deepEqual(config.members.map((m) => `${m.id}=${m.host}:${m.role}`).sort(), [
      '1=127.0.0.11:participant',
      '2=127.0.0.12:participant',
      '3=127.0.0.13:participant',
    ]);
    const statuses = await Promise.all(addresses.map((a) => node(a).adapter.checkServer()));
    for (const s of statuses) assert.equal(s.healthy, true, s.detail);
    const rss = await rssMiB(statuses.map((s) => s.pid!));
    t.diagnostic(
      `RSS after the rejoin: ${rss.join(' + ')} = ${rss.reduce((a, b) => a + b, 0)} MiB`,
    );
  });

  test('export/import and backup/restore round-trip into a fresh single server', async () => {
    const source = node('127.0.0.11');
    const binary = Buffer.from([0, 1, 2, 254, 255]);
    await withZooKeeperClient(zk('127.0.0.11'), 10_000, async (c) => {
      await put(c, '/cg/binary', binary);
      await put(c, '/cg/deep', Buffer.alloc(0));
      await put(c, '/cg/deep/er', Buffer.from('nested'));
      // Ephemeral znodes belong to live sessions: a dump leaves them out.
      await put(c, '/cg/session', Buffer.from('ephemeral'), true);
      const exported = await source.adapter.exportData!();
      assert.deepEqual(
        exported.files.map((f) => f.path),
        ['znodes.json'],
      );
      await source.adapter.backupData!();
    });
    await Promise.all(addresses.map((a) => node(a).adapter.stopServer()));

    // A fresh single node: startServer with a 1-member view configures itself (docs/design.md, "Runbooks and lanes").
    const fresh = await makeNode('127.0.0.12');
    const status = await fresh.adapter.startServer(view(['127.0.0.12']));
    assert.equal(status.healthy, true, status.detail);
    assert.match(status.detail, /^leader,/);

    await cp(
      source.layout.workingFolder('export', 'zookeeper'),
      fresh.layout.workingFolder('import', 'zookeeper'),
      { recursive: true },
    );
    const imported = await fresh.adapter.importData!();
    assert.deepEqual(
      imported.files.map((f) => f.path),
      ['znodes.json'],
    );
    await withZooKeeperClient(zk('127.0.0.12'), 10_000, async (c) => {
      assert.equal((await get(c, '/cg/greeting'))?.toString(), 'written on .11');
      assert.equal((await get(c, '/cg/while-out'))?.toString(), 'missed by .13');
      assert.deepEqual(await get(c, '/cg/binary'), binary);
      assert.equal((await get(c, '/cg/deep/er'))?.toString(), 'nested');
      assert.equal(await get(c, '/cg/session'), undefined);
      await put(c, '/cg/after-backup', Buffer.from('must go'));
    });

    await cp(
      source.layout.workingFolder('backup', 'zookeeper'),
      fresh.layout.workingFolder('restore', 'zookeeper'),
      { recursive: true },
    );
    await fresh.adapter.restoreData!();
    await withZooKeeperClient(zk('127.0.0.12'), 10_000, async (c) => {
      assert.equal(await get(c, '/cg/after-backup'), undefined, 'restore replaces the tree');
      assert.deepEqual(await get(c, '/cg/binary'), binary);
      assert.equal((await get(c, '/cg/after-remove'))?.toString(), 'two members');
    });
    await removeNode(fresh);
  });
});
