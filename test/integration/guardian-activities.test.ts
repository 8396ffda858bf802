import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../activities/interceptor.js';
import { DefaultLogger } from '@temporalio/worker';
import {
  createGuardianActivities,
  createWebappActivities,
} from '../../activities/guardian-activities.js';
import { defaultClusterFile } from '../../src/contracts/cluster-file.js';
import { createLogger } from '../../src/logger.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { connectClient } from '../../src/temporal/connection.js';
import { askGuardianIfNotReady } from '../../worker/guardian-hook.js';
import { testServer } from '../helpers/temporal.js';

/**
 * The guardian's activities with real processes and a real socket: the webapp command runs as a
 * child process; the controller's HTTP API (which cannot exist here) is a local stand-in.
 */
const logger = createLogger('guardian-test', 'error');
const standInHost = '127.0.0.58';

function run<T>(fn: () => Promise<T>): Promise<T> {
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('ERROR'),
    interceptors: activityInterceptors(),
  });
  return env.run(fn);
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('webapp commands from the agent config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-webapps-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('configured commands run without a shell; unset ones are skipped and say so', async () => {
    const log = path.join(dir, 'webapps.log');
    const acts = createWebappActivities({
      address: '127.0.0.51',
      logger,
      webapps: {
        stopCommand: ['/bin/sh', '-c', `echo "stop $0" >> ${log}`, 'all webapps'],
        timeoutSeconds: 10,
      },
    });
    const stopped = await run(() => acts.controlWebapps({ action: 'stop' }));
    assert.equal(stopped.outcome, 'done');
    assert.equal(await readFile(log, 'utf8'), 'stop all webapps\n');
    const started = await run(() => acts.controlWebapps({ action: 'start' }));
    assert.deepEqual(started, {
      node: '127.0.0.51',
      action: 'start',
      outcome: 'skipped',
      detail: 'webapps.startCommand is not configured on 127.0.0.51: skipped',
    });
  });

  test('a failing command is retryable; a missing program is not', async () => {
    const acts = createWebappActivities({
      address: '127.0.0.51',
      logger,
      webapps: {
        stopCommand: ['/bin/sh', '-c', 'echo busy >&2; exit 3'],
        startCommand: [path.join(dir, 'no-such-program')],
        timeoutSeconds: 10,
      },
    });
    const failed = await failure(run(() => acts.controlWebapps({ action: 'stop' })));
    assert.equal(failed.type, 'WebappCommandFailed');
    assert.equal(failed.nonRetryable, false);
    assert.match(failed.message, /exit code 3\): busy/);
    const missing = await failure(run(() => acts.controlWebapps({ action: 'start' })));
    assert.equal(missing.type, 'MissingBinary');
    assert.equal(missing.nonRetryable, true);
  });
});

describe('polling the controller (a local stand-in for its HTTP API)', () => {
  let server: Server;
  let base: string;
  let reply: { status: number; body: string; delayMs?: number } = { status: 200, body: '' };
  before(async () => {
    server = createServer((_req, res) => {
      setTimeout(() => {
        res.statusCode = reply.status;
        res.end(reply.body);
      }, reply.delayMs ?? 0);
    });
    const port = await freePort(standInHost);
    await new Promise<void>((resolve) => server.listen(port, standInHost, resolve));
    base = `http://${standInHost}:${port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const acts = createGuardianActivities({ logger });
  const poll = (timeoutSeconds = 5) =>
    run(() => acts.fetchControllerCluster({ url: `${base}/cluster`, timeoutSeconds }));

  test('a ControllerCluster becomes the desired membership', async () => {
    reply = {
      status: 200,
      body: JSON.stringify({
        output: {
          clusterIpList: [
            { controllerIp: '10.0.0.2', clusterIndex: 1, isOnline: false },
            { controllerIp: '10.0.0.1', clusterIndex: 0, isOnline: true },
          ],
        },
      }),
    };
    const answer = await poll();
    assert.deepEqual(answer.nodes, ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(answer.offline, ['10.0.0.2']);
  });

  test('errors, timeouts and answers that are not a ControllerCluster are said as such', async () => {
    reply = { status: 503, body: 'down' };
    const down = await failure(poll());
    assert.equal(down.type, 'ControllerUnavailable');
    assert.match(down.message, /HTTP 503/);

    reply = { status: 200, body: '{}', delayMs: 3000 };
    const slow = await failure(poll(1));
    assert.equal(slow.type, 'ControllerUnavailable');
    assert.match(slow.message, /no answer within 1 s/);

    reply = { status: 200, body: JSON.stringify({ output: { clusterIpList: [] } }) };
    const empty = await failure(poll());
    assert.equal(empty.type, 'InvalidInput');
    assert.equal(empty.nonRetryable, true);
    assert.match(empty.message, /lists no cluster member/);
  });
});

describe('the node agent hook', () => {
  test('a restarted member that is not ready and finds no guardian only logs it', async () => {
    const file = defaultClusterFile(new Date(0));
    file.cluster.nodes = ['127.0.0.51', '127.0.0.52', '127.0.0.53'];
    file.cluster.nodeConfigReady = false;
    const warnings: string[] = [];
    const result = await askGuardianIfNotReady({
      clusterId: `no-guardian-${process.pid}`,
      address: '127.0.0.52',
      loadClusterFile: () => Promise.resolve(file),
      connect: () => connectClient(testServer()),
      logger: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    assert.equal(result, 'no-guardian');
    assert.match(warnings.join('\n'), /no guardian runs as cg\/no-guardian-\d+\/guardian/);

    const unreachable = await askGuardianIfNotReady({
      clusterId: 'x',
      address: '127.0.0.52',
      loadClusterFile: () => Promise.resolve(file),
      connect: () => Promise.reject(new Error('connection refused')),
      logger: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    assert.equal(unreachable, 'failed');
  });
});
