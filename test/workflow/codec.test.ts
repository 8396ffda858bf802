import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import proto from '@temporalio/proto';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';
import { dataConverterFor } from '../../src/temporal/connection.js';
import { encryptedEncoding } from '../../src/client/codec.js';
import { startRunbook } from '../../src/client/index.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * Payload encryption end to end: the orchestrator, two real agent processes and the client
 * share a key ring (the agents through CG_CODEC__KEYS, as a deployment would set it); a
 * pingCluster runs; its raw history, read without the key, holds nothing readable — every
 * payload is `binary/encrypted`, and the agents' data roots, which the result carries, appear
 * nowhere — while a client with the ring reads the result, and one with another key is refused.
 * A runbook that fails with a secret in its error message leaves "Encoded failure" in the raw
 * history (src/client/failure-converter.ts), while the client with the ring reads the message.
 */
const nodes = ['127.0.0.81', '127.0.0.82'];
const key = (id: string) => `${id}=${randomBytes(32).toString('base64')}`;

/** Every `{ metadata, data }` payload in a history as `temporal workflow show` prints it. */
function payloadsOf(
  value: unknown,
  out: { metadata: Record<string, string>; data?: string }[] = [],
) {
  if (Array.isArray(value)) for (const v of value) payloadsOf(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && ('data' in o || 'encoding' in o.metadata)) {
      out.push(o as { metadata: Record<string, string>; data?: string });
    } else for (const v of Object.values(o)) payloadsOf(v, out);
  }
  return out;
}

describe('payload encryption: a runbook whose history holds no clear payload', () => {
  const ring = { keys: key('k1'), current: 'k1' };
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;

  before(async () => {
    const dataConverter = await dataConverterFor(ring);
    assert.ok(dataConverter);
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator({ dataConverter }),
      startTestCluster(nodes, {
        env: () => ({ CG_CODEC__KEYS: ring.keys, CG_CODEC__CURRENT: ring.current }),
      }),
    ]);
  });
  after(async () => {
    await orchestrator?.close();
    await cluster?.close();
  });

  test('raw history is ciphertext; the ring reads it; another key is refused', async () => {
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: 'codec', nodes },
      { taskQueue: orchestrator.taskQueue },
    );
    const result = await handle.result();
    const roots = result.nodes.map((n) => n.root);
    assert.deepEqual(
      roots,
      nodes.map((n) => path.join(cluster.dir, 'nodes', n)),
    );

    const { address, namespace } = testServer();
    const { stdout } = await execa(path.join(repoRoot, '.tools', 'bin', 'temporal'), [
      'workflow',
      'show',
      '--address',
      address,
      '--namespace',
      namespace,
      '--workflow-id',
      handle.workflowId,
      '--output',
      'json',
    ]);
    // Search attributes (a `type` in their metadata) are indexed by the server, so Temporal never
    // passes them through a codec: clusterguard keeps them to cluster ids, runbook names, nodes.
    // Patch markers (`patched()`) are written by the SDK's core, not through the codec: they
    // hold the patch's name only (e.g. {"id":"progress-memo"}), never runbook data.
    const history = JSON.parse(stdout) as { events: Record<string, unknown>[] };
    const events = history.events.filter(
      (e) =>
        (e.markerRecordedEventAttributes as { markerName?: string } | undefined)?.markerName !==
        'core_patch',
    );
    assert.ok(events.length < history.events.length, 'the runbook records a patch marker');
    const all = payloadsOf({ ...history, events });
    const payloads = all.filter((p) => !p.metadata.type);
    assert.ok(all.length > payloads.length, 'the search attributes are found and left out');
    assert.ok(
      payloads.length >= 4,
      `input, activity inputs and results, result: ${payloads.length}`,
    );
    for (const p of payloads) {
      assert.equal(
        Buffer.from(p.metadata.encoding ?? '', 'base64').toString(),
        encryptedEncoding,
        JSON.stringify(p),
      );
    }
    const raw = payloads
      .map((p) => Buffer.from(p.data ?? '', 'base64').toString('latin1'))
      .join('\n');
    for (const root of roots) assert.ok(!raw.includes(root), `${root} is not in clear`);
    assert.ok(!stdout.includes(cluster.dir), 'the roots are nowhere in the raw history');

    const connection = await Connection.connect({ address });
    try {
      const other = await dataConverterFor({ keys: key('k2'), current: 'k2' });
      const stranger = new Client({
        connection,
        namespace,
        ...(other ? { dataConverter: other } : {}),
      });
      await assert.rejects(
        stranger.workflow.getHandle(handle.workflowId).result(),
        /encrypted with key "k1", which this process's key ring does not hold \(it holds k2\)/,
      );
    } finally {
      await connection.close();
    }
  });
  test('a failure message that quotes a secret is encrypted in history', async () => {
    // A strict input schema names an unknown field in its error: here, a "secret".
    const secret = `password-${randomBytes(6).toString('hex')}`;
    const workflowId = `cg/codec/failure-${randomBytes(4).toString('hex')}`;
    const handle = await orchestrator.client.workflow.start('pingCluster', {
      taskQueue: orchestrator.taskQueue,
      workflowId,
      args: [{ clusterId: 'codec', nodes, [secret]: 'hunter2' }],
    });
    const failure = await handle.result().then(
      () => assert.fail('pingCluster with an unknown field completed'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError, String(failure));
    assert.match(failure.cause?.message ?? '', /invalid pingCluster input/);
    assert.ok(failure.cause?.message.includes(secret), failure.cause?.message);

    const { address, namespace } = testServer();
    const connection = await Connection.connect({ address });
    try {
      const raw = new Client({ connection, namespace });
      const history = await raw.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId },
      });
      const failed = history.history?.events?.find((e) => e.workflowExecutionFailedEventAttributes);
      const rawFailure = failed?.workflowExecutionFailedEventAttributes?.failure;
      assert.equal(rawFailure?.message, 'Encoded failure');
      assert.equal(rawFailure?.stackTrace ?? '', '');
      const encoding = rawFailure?.encodedAttributes?.metadata?.encoding;
      assert.equal(Buffer.from(encoding ?? []).toString(), encryptedEncoding);
      const bytes = Buffer.from(
        proto.temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse.encode(
          history,
        ).finish(),
      );
      assert.ok(!bytes.includes(secret), 'the secret is nowhere in the raw history');
      assert.ok(!bytes.includes('invalid pingCluster input'), 'nor the failure message');
    } finally {
      await connection.close();
    }
  });
});
