import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../activities/interceptor.js';
import { DefaultLogger } from '@temporalio/worker';
import {
  createMembershipActivities,
  type MembershipActivityDeps,
} from '../../activities/membership-activities.js';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import { ClusterStore } from '../../src/config/cluster-store.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { Logger } from '../../src/logger.js';
import { assertPortFree, freePort } from '../../src/temporal/dev-server.js';

const master = '127.0.0.11';
const node12 = '127.0.0.12';
const node13 = '127.0.0.13';
const nowhere = '127.0.0.14';

interface Line {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

function recordingLogger(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Beat {
  waitingFor?: string;
  master?: string;
  attempt?: number;
  lastError?: string;
}

function environment(): { env: MockActivityEnvironment; beats: Beat[] } {
  // The SDK logs every failed activity; the failures here are the point of the tests.
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('ERROR'),
    interceptors: activityInterceptors(),
  });
  const beats: Beat[] = [];
  env.on('heartbeat', (d: Beat) => beats.push(d));
  return { env, beats };
}

/** Runs `call` in `env`'s activity context, keeping its result type. */
function run<R>(env: MockActivityEnvironment, call: () => Promise<R>): Promise<R> {
  return env.run(call);
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function filesUnder(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await readdir(folder, { recursive: true })) {
    const full = path.join(folder, rel);
    if ((await stat(full)).isFile()) out[rel] = await readFile(full, 'base64');
  }
  return out;
}

describe('membership activities against a real master agent on 127.0.0.11', () => {
  const token = randomBytes(24).toString('base64url');
  const lines: Line[] = [];
  const logger = recordingLogger(lines);
  let dir: string;
  let port: number;
  let server: RunningAgentServer;
  const layouts = new Map<string, NodeLayout>();

  const layoutOf = (address: string): NodeLayout => {
    const layout = layouts.get(address);
    assert.ok(layout, address);
    return layout;
  };

  const activitiesOf = (address: string, overrides: Partial<MembershipActivityDeps> = {}) => {
    const layout = layoutOf(address);
    return createMembershipActivities({
      address,
      layout,
      clusterStore: new ClusterStore({ file: layout.clusterFile }),
      token,
      agentPort: port,
      logger,
      downloadRetry: { initialMs: 40, maxMs: 200 },
      ...overrides,
    });
  };

  /** What the master's createCluster step would have generated for `node`. */
  async function generateConfig(node: string): Promise<void> {
    const layout = layoutOf(master);
    const certs = layout.clusterConfigFor(node, 'cockroach');
    const conf = layout.clusterConfigFor(node, 'kafka');
    await mkdir(certs, { recursive: true });
    await mkdir(conf, { recursive: true });
    await writeFile(path.join(certs, 'node.key'), randomBytes(1200));
    await chmod(path.join(certs, 'node.key'), 0o600);
    await writeFile(path.join(certs, 'node.crt'), `certificate of ${node}\n`);
    await writeFile(
      path.join(conf, 'server.properties'),
      `advertised.listeners=PLAINTEXT://${node}\n`,
    );
  }

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-membership-'));
    for (const address of [master, node12, node13]) {
      const layout = new NodeLayout(path.join(dir, address));
      await layout.ensureAll();
      layouts.set(address, layout);
    }
    port = await freePort(master);
    const app = createAgentApp({
      address: master,
      layout: layoutOf(master),
      token,
      logger,
      agentVersion: 'test',
      maxBodyBytes: 1024,
    });
    server = await startAgentServer(app, master, port);
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the master packs a node’s configuration and the node gets identical files', async () => {
    await generateConfig(node12);
    const packed = await run(environment().env, () =>
      activitiesOf(master).packDistribution({
        nodes: [node12],
      }),
    );
    assert.equal(packed.archives.length, 1);
    const archive = packed.archives[0]!;
    assert.equal(archive.node, node12);
    assert.equal(archive.entries, 3);
    assert.equal(archive.bytes, (await stat(layoutOf(master).distributionFileFor(node12))).size);

    const { env } = environment();
    const got = await run(env, () =>
      activitiesOf(node12).downloadDistribution({
        master,
        expectedSha256: archive.sha256,
      }),
    );
    assert.deepEqual(got, {
      node: node12,
      sha256: archive.sha256,
      bytes: archive.bytes,
      entries: 3,
      attempts: 1,
    });
    const mine = layoutOf(node12).clusterConfigFor(node12);
    assert.deepEqual(
      await filesUnder(mine),
      await filesUnder(layoutOf(master).clusterConfigFor(node12)),
    );
    assert.equal(
      (await stat(path.join(mine, 'cockroach', 'certs', 'node.key'))).mode & 0o777,
      0o600,
    );
    // The downloaded zip was a temp file: gone once unpacked.
    assert.deepEqual(await readdir(layoutOf(node12).clusterDistributionFolder), []);
  });

  test('packing a node without generated configuration is a permanent InvalidInput', async () => {
    const { env } = environment();
    await assert.rejects(
      run(env, () => activitiesOf(master).packDistribution({ nodes: [nowhere] })),
      (err) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, 'InvalidInput');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /^packDistribution on node 127\.0\.0\.11: /);
        assert.match(
          err.message,
          /no configuration generated for 127\.0\.0\.14 in .*cluster-config\/127\.0\.0\.14: run createCluster/,
        );
        return true;
      },
    );
  });

  test('the download retries while the archive is missing (404) and succeeds once packed', async () => {
    const { env, beats } = environment();
    const download = run(env, () => activitiesOf(node13).downloadDistribution({ master }));
    await until('three failed attempts', () =>
      beats.some((b) => (b.attempt ?? 0) >= 3 && /HTTP 404/.test(b.lastError ?? '')),
    );
    const beat = beats.find((b) => b.lastError !== undefined);
    assert.equal(beat?.waitingFor, 'master');
    assert.equal(beat?.master, master);
    assert.match(beat?.lastError ?? '', /no configuration archive for node 127\.0\.0\.13/);

    await generateConfig(node13);
    const packed = await run(environment().env, () =>
      activitiesOf(master).packDistribution({
        nodes: [node13],
      }),
    );
    const got = await download;
    assert.ok(got.attempts >= 3, `attempts: ${got.attempts}`);
    assert.equal(got.sha256, packed.archives[0]?.sha256);
    assert.deepEqual(
      await filesUnder(layoutOf(node13).clusterConfigFor(node13)),
      await filesUnder(layoutOf(master).clusterConfigFor(node13)),
    );
  });

  test('an archive other than the expected one is waited out, not unpacked', async () => {
    await generateConfig(node12);
    const { env, beats } = environment();
    const download = run(env, () =>
      activitiesOf(node12).downloadDistribution({
        master,
        expectedSha256: 'a'.repeat(64),
      }),
    );
    await until('a sha mismatch', () =>
      beats.some((b) => /not the expected a{64}/.test(b.lastError ?? '')),
    );
    env.cancel();
    await assert.rejects(download, (err) => err instanceof CancelledFailure);
  });

  test('a wrong token is a non-retryable Unauthorized failure, at once', async () => {
    const { env } = environment();
    const started = Date.now();
    await assert.rejects(
      run(env, () =>
        activitiesOf(node12, { token: 'not-the-cluster-token' }).downloadDistribution({
          master,
        }),
      ),
      (err) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, 'Unauthorized');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /^downloadDistribution on node 127\.0\.0\.12: /);
        assert.match(err.message, /master 127\.0\.0\.11 refused/);
        assert.match(err.message, /HTTP 401: missing or wrong cluster token/);
        assert.match(err.message, /cluster token file/);
        assert.ok(!err.message.includes(token));
        return true;
      },
    );
    assert.ok(Date.now() - started < 2000, 'no backoff before a permanent failure');
  });

  test('a master that is not listening is retried until the step is cancelled', async () => {
    await assertPortFree(nowhere, port, 'test');
    const before = lines.length;
    const { env, beats } = environment();
    const download = run(env, () => activitiesOf(node12).downloadDistribution({ master: nowhere }));
    await until('four failed attempts', () =>
      beats.some((b) => (b.attempt ?? 0) >= 4 && /ECONNREFUSED/.test(b.lastError ?? '')),
    );
    const cancelledAt = Date.now();
    env.cancel();
    await assert.rejects(download, (err) => err instanceof CancelledFailure);
    assert.ok(Date.now() - cancelledAt < 1000, 'stops promptly');
    const beatsAtCancel = beats.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(beats.length, beatsAtCancel, 'no attempts after cancellation');
    // Several failures, one log line: the rest are within the 10 s quiet period.
    const warned = lines
      .slice(before)
      .filter((l) => l.message === 'configuration download failed; retrying');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.fields?.master, nowhere);
    assert.deepEqual(await readdir(layoutOf(node12).clusterDistributionFolder), []);
  });

  test('writeClusterState with the same revision writes once', async () => {
    const layout = layoutOf(node13);
    const store = new ClusterStore({ file: layout.clusterFile });
    const initial = await store.load();
    const activities = activitiesOf(node13);
    const { env } = environment();
    const input = {
      cluster: {
        nodes: [master, node12, node13],
        memberIds: { [master]: 1, [node12]: 2, [node13]: 3 },
        clusterConfigReady: false,
      },
      reason: 'bootstrapCluster: new membership',
      revision: 'run-1/membership',
      datetime: '2026-05-06T07:08:09.000Z',
    };
    const first = await run(env, () => activities.writeClusterState(input));
    assert.equal(first.changed, true);
    assert.deepEqual(first.file.cluster.nodes, [master, node12, node13]);
    assert.equal(first.file.cluster.revision, 'run-1/membership');
    assert.equal(first.file.cluster.datetime, input.datetime);
    assert.equal(first.file.cluster.clusterConfigReady, false);
    // Fields not given are kept.
    assert.equal(first.file.cluster.nodeIsMaster, initial.cluster.nodeIsMaster);
    assert.equal(first.file.history.length, initial.history.length + 1);
    assert.deepEqual(first.file.history.at(-1), {
      datetime: input.datetime,
      nodes: initial.cluster.nodes,
      decommissionNodes: initial.cluster.decommissionNodes,
      reason: input.reason,
    });

    const text = await readFile(layout.clusterFile, 'utf8');
    const second = await run(env, () =>
      activities.writeClusterState({
        ...input,
        datetime: '2026-05-06T07:10:00.000Z',
      }),
    );
    assert.equal(second.changed, false);
    assert.deepEqual(second.file, first.file);
    assert.equal(await readFile(layout.clusterFile, 'utf8'), text, 'not rewritten');
    assert.equal((await store.load()).history.length, initial.history.length + 1);

    const third = await run(env, () =>
      activities.writeClusterState({
        ...input,
        cluster: { nodes: [master, node12, node13], clusterConfigReady: true },
        revision: 'run-1/ready',
      }),
    );
    assert.equal(third.changed, true);
    assert.equal(third.file.history.length, initial.history.length + 2);
    assert.deepEqual(third.file.cluster.memberIds, input.cluster.memberIds);
  });

  test('resetNode wipes the node and makes it standalone, once', async () => {
    const layout = layoutOf(node12);
    const store = new ClusterStore({ file: layout.clusterFile });
    const activities = activitiesOf(node12);
    const { env } = environment();
    await run(env, () =>
      activities.writeClusterState({
        cluster: {
          nodes: [master, node12, node13],
          decommissionNodes: [nowhere],
          memberIds: { [master]: 1, [node12]: 2, [node13]: 3 },
          clusterUuid: 'AAAAAAAAAAAAAAAAAAAAAA',
          nodeIsMaster: false,
        },
        reason: 'joined',
        revision: 'run-0/join',
        datetime: '2026-05-06T07:00:00.000Z',
      }),
    );
    const put = async (file: string) => {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, 'x');
    };
    await put(path.join(layout.nodeDataFolder('zookeeper'), 'version-2', 'snapshot.0'));
    await put(path.join(layout.nodeConfigFolder('zookeeper'), 'zoo.cfg'));
    await put(path.join(layout.nodeConfigRoot, 'zookeeper', 'myid'));
    await put(path.join(layout.nodeDataFolder('cockroach'), '000001.sst'));
    await put(path.join(layout.nodeConfigFolder('cockroach'), 'node.key'));
    await put(path.join(layout.nodeDataFolder('kafka'), 'meta.properties'));
    await put(path.join(layout.nodeLogFolder('zookeeper'), 'zookeeper.log'));
    await put(path.join(layout.clusterConfigFor(master), 'kafka', 'conf', 'server.properties'));
    await put(layout.distributionFileFor(master));

    const before = await store.load();
    const reset = await run(env, () =>
      activities.resetNode({
        middleware: ['zookeeper', 'cockroach'],
        reason: 'decommissionNodes: removed from the cluster',
        revision: 'run-2/reset',
        datetime: '2026-05-07T00:00:00.000Z',
      }),
    );
    assert.equal(reset.changed, true);
    assert.deepEqual(
      reset.wiped.sort(),
      [
        layout.clusterConfigFolder,
        layout.clusterDistributionFolder,
        path.join(layout.nodeConfigRoot, 'cockroach'),
        path.join(layout.nodeConfigRoot, 'zookeeper'),
        layout.nodeDataFolder('cockroach'),
        layout.nodeDataFolder('zookeeper'),
      ].sort(),
    );
    for (const emptied of [
      layout.nodeDataFolder('zookeeper'),
      layout.nodeDataFolder('cockroach'),
      layout.nodeConfigFolder('zookeeper'),
      layout.nodeConfigFolder('cockroach'),
      layout.clusterConfigFolder,
      layout.clusterDistributionFolder,
    ]) {
      assert.deepEqual(await readdir(emptied), [], emptied);
    }
    assert.deepEqual(await readdir(path.join(layout.nodeConfigRoot, 'zookeeper')), ['conf']);
    // Middleware not named, and logs, are left alone.
    assert.deepEqual(await readdir(layout.nodeDataFolder('kafka')), ['meta.properties']);
    assert.deepEqual(await readdir(layout.nodeLogFolder('zookeeper')), ['zookeeper.log']);

    const after = await store.load();
    assert.deepEqual(after.cluster, {
      datetime: '2026-05-07T00:00:00.000Z',
      nodes: [node12],
      decommissionNodes: [],
      clusterConfigReady: true,
      nodeConfigReady: true,
      nodeIsMaster: true,
      nodeIsRejoin: true,
      revision: 'run-2/reset',
    });
    assert.equal(after.history.length, before.history.length + 1);
    assert.deepEqual(after.history.at(-1), {
      datetime: '2026-05-07T00:00:00.000Z',
      nodes: [master, node12, node13],
      decommissionNodes: [nowhere],
      reason: 'decommissionNodes: removed from the cluster',
    });

    // A retry of the same step finds its revision and wipes nothing again.
    await put(path.join(layout.nodeDataFolder('zookeeper'), 'new-data'));
    const again = await run(env, () =>
      activities.resetNode({
        middleware: ['zookeeper', 'cockroach'],
        reason: 'decommissionNodes: removed from the cluster',
        revision: 'run-2/reset',
        datetime: '2026-05-07T00:00:00.000Z',
      }),
    );
    assert.deepEqual(again, { changed: false, wiped: [] });
    assert.deepEqual(await readdir(layout.nodeDataFolder('zookeeper')), ['new-data']);
    assert.equal((await store.load()).history.length, after.history.length);
  });
});
