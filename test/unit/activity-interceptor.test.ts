import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import {
  activityInterceptors,
  describeActivity,
  keepHeartbeating,
} from '../../activities/interceptor.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { withOperations } from '../../src/middleware/kit/index.js';

function environment(): { env: MockActivityEnvironment; beats: unknown[] } {
  const env = new MockActivityEnvironment(
    { activityType: 'probe' },
    { logger: new DefaultLogger('ERROR'), interceptors: activityInterceptors('127.0.0.111') },
  );
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  return { env, beats };
}

async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await run;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    return err;
  }
  assert.fail('the activity did not fail');
}

describe('the activity interceptor', () => {
  test('a permanent ClusterGuardError is non-retryable, of its type, prefixed with where', async () => {
    const { env } = environment();
    const failure = await failureOf(
      env.run(() => {
        describeActivity('verifyArchive of backup x on node 127.0.0.111');
        return Promise.reject(new ClusterGuardError('UnsafeArchive', 'its manifest changed'));
      }),
    );
    assert.equal(failure.type, 'UnsafeArchive');
    assert.equal(failure.nonRetryable, true);
    assert.equal(
      failure.message,
      'verifyArchive of backup x on node 127.0.0.111: its manifest changed',
    );
  });

  test('a transient one is retryable; without a description it names the activity and node', async () => {
    const { env } = environment();
    const failure = await failureOf(
      env.run(() => Promise.reject(new ClusterGuardError('MiddlewareFailure', 'no quorum'))),
    );
    assert.equal(failure.type, 'MiddlewareFailure');
    assert.equal(failure.nonRetryable, false);
    assert.equal(failure.message, 'probe on node 127.0.0.111: no quorum');
  });

  test('other errors pass through as they are', async () => {
    const { env } = environment();
    const plain = new Error('disk full');
    await assert.rejects(
      env.run(() => Promise.reject(plain)),
      (err) => err === plain,
    );
  });

  test('keepHeartbeating beats with the latest details while the activity runs, and stops after', async () => {
    const { env, beats } = environment();
    let step = 'one';
    await env.run(async () => {
      keepHeartbeating(() => ({ step }), 20);
      await sleep(70);
      step = 'two';
      await sleep(70);
    });
    assert.ok(beats.some((b) => (b as { step: string }).step === 'one'));
    assert.ok(beats.some((b) => (b as { step: string }).step === 'two'));
    const after = beats.length;
    await sleep(80);
    assert.equal(beats.length, after, 'no heartbeat once the activity ended');
  });
});

describe('an adapter’s operation table', () => {
  const status = { running: false, healthy: false, detail: 'stand-in' };
  const adapter = withOperations({
    name: 'controller',
    startServer: () => Promise.resolve(status),
    stopServer: () => Promise.resolve(),
    checkServer: () => Promise.resolve(status),
    backupData: () => Promise.resolve({ folder: '/b', files: [] }),
  });

  test('has what the adapter implements and nothing else', async () => {
    assert.equal(adapter.operations.joinCluster, undefined);
    assert.equal(adapter.operations.inspect, undefined);
    assert.deepEqual(await adapter.operations.backupData?.({ where: 'w' }), {
      data: { folder: '/b', files: [] },
    });
    assert.deepEqual(await adapter.operations.stopServer?.({ where: 'w' }), { status });
  });

  test('an adapter without replicated data is in sync', async () => {
    assert.deepEqual(await adapter.operations.checkInSync?.({ where: 'w' }), {
      inSync: { inSync: true, detail: 'controller: nothing replicated' },
    });
  });
});
