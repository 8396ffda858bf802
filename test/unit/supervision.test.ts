import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Supervision } from '../../src/agent/supervision.js';
import { configuredMember } from '../../src/agent/supervisor.js';
import { defaultClusterFile } from '../../src/contracts/cluster-file.js';
import { healthProblems } from '../../src/contracts/guardian.js';
import { renderGuardianMarkdown } from '../../src/contracts/guardian-decision.js';
import type { Logger } from '../../src/logger.js';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describe('the supervision record (docs/design.md, "Self-healing node")', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-supervision-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a runbook stop holds the server, across an agent restart, until a start leaves it running', async () => {
    const s = Supervision.forConfFolder(dir, quiet);
    let busyDuring = false;
    await s.runbookOperation(
      'kafka',
      'stopServer',
      () => {
        busyDuring = s.busy('kafka');
        return Promise.resolve();
      },
      () => Promise.resolve(false),
    );
    assert.ok(busyDuring, 'the supervisor keeps its hands off while the operation runs');
    assert.equal(s.busy('kafka'), false);
    const restarted = Supervision.forConfFolder(dir, quiet);
    assert.equal((await restarted.record('kafka')).heldBy?.operation, 'stopServer');
    await restarted.giveUp('kafka', 5, 'port in use');
    await restarted.runbookOperation(
      'kafka',
      'startServer',
      () => Promise.resolve(),
      () => Promise.resolve(true),
    );
    assert.deepEqual(await Supervision.forConfFolder(dir, quiet).record('kafka'), {});
  });

  test('a read-only operation holds nothing; only a stop or a decommission that left it stopped holds it', async () => {
    const s = Supervision.forConfFolder(dir, quiet);
    await s.runbookOperation(
      'zookeeper',
      'checkInSync',
      () => Promise.resolve(),
      () => Promise.resolve(false),
    );
    assert.deepEqual(await s.record('zookeeper'), {});
    // While it runs the supervisor may start the server it reads from (found by a chaos
    // campaign: a backup waiting for a killed ZooKeeper kept the supervisor away for ever).
    let busyDuringRead: boolean | undefined;
    await s.runbookOperation(
      'zookeeper',
      'backupData',
      () => {
        busyDuringRead = s.busy('zookeeper');
        return Promise.resolve();
      },
      () => Promise.resolve(false),
    );
    assert.equal(busyDuringRead, false);
    await assert.rejects(
      s.runbookOperation(
        'zookeeper',
        'restoreData',
        () => Promise.reject(new Error('half way')),
        () => Promise.resolve(false),
      ),
      /half way/,
    );
    // It meant to leave the server running: the server was killed under it, or it failed; the
    // runbook retries its work, and the supervisor may restart the server meanwhile.
    assert.deepEqual(await s.record('zookeeper'), {});
    await assert.rejects(
      s.runbookOperation(
        'zookeeper',
        'stopServer',
        () => Promise.reject(new Error('stopped, then the agent lost its answer')),
        () => Promise.resolve(false),
      ),
      /stopped/,
    );
    assert.equal((await s.record('zookeeper')).heldBy?.operation, 'stopServer');
    await s.runbookOperation(
      'kafka',
      'decommissionCluster',
      () => Promise.resolve(),
      () => Promise.resolve(false),
    );
    assert.equal((await s.record('kafka')).heldBy?.operation, 'decommissionCluster');
  });

  test("a runbook operation aborts the supervisor's own start first", async () => {
    const s = Supervision.forConfFolder(dir, quiet);
    let aborted = false;
    const own = s
      .ownStart(
        'felix',
        (signal) =>
          new Promise<void>((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted = true;
              reject(new Error('aborted'));
            }),
          ),
      )
      .then(
        () => 'completed',
        (err: Error) => err.message,
      );
    await s.runbookOperation(
      'felix',
      'startServer',
      () => {
        assert.ok(aborted, 'aborted before the operation ran');
        return Promise.resolve();
      },
      () => Promise.resolve(true),
    );
    assert.equal(await own, 'aborted');
  });

  test('only a configured member is supervised', () => {
    const file = defaultClusterFile(new Date(), '127.0.0.191');
    assert.equal(configuredMember(file, '127.0.0.191'), true);
    assert.equal(configuredMember(file, '127.0.0.192'), false);
    file.cluster.nodeConfigReady = false;
    assert.equal(configuredMember(file, '127.0.0.191'), false);
  });
});

describe('node health as the guardian reads it', () => {
  test('running, held and unsupervised servers are fine; down, failed and wrong bundles are not', () => {
    const servers = [
      { server: 'zookeeper', state: 'running', detail: 'runs', restarts: 1 },
      { server: 'kafka', state: 'held', detail: 'a runbook stopped it', restarts: 0 },
      { server: 'felix', state: 'unsupervised', detail: 'not a member', restarts: 0 },
    ];
    assert.deepEqual(healthProblems({ node: 'n', member: true, servers }), []);
    const problems = healthProblems({
      node: 'n',
      member: true,
      servers: [
        ...servers,
        { server: 'cockroach', state: 'failed', detail: 'gave up', restarts: 0 },
      ],
      bundles: { ok: false, detail: 'greeter 1.1.0 missing' },
    });
    assert.deepEqual(problems, ['cockroach failed: gave up', 'bundles: greeter 1.1.0 missing']);
  });

  test('the details show a health table', () => {
    const md = renderGuardianMarkdown({
      clusterId: 'dev',
      intervalSeconds: 15,
      dryRun: false,
      ticks: 1,
      master: '127.0.0.11',
      pendingRejoins: [],
      totalTicks: 1,
      run: 1,
      history: [],
      events: 0,
      health: {
        '127.0.0.11': { healthy: true, problems: [], since: 't0', checkedAt: 't1' },
        '127.0.0.12': {
          healthy: false,
          problems: ['agent unreachable: no answer within 10 s'],
          since: 't1',
          checkedAt: 't1',
        },
      },
    });
    assert.match(md, /\| 127\.0\.0\.11 \| healthy \| t0 \|/);
    assert.match(md, /\| 127\.0\.0\.12 \| \*\*unhealthy\*\*: agent unreachable/);
  });
});
