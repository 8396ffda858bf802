import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { encryptedEncoding } from '../../src/client/codec.js';
import type { Progress } from '../../src/contracts/progress.js';
import { repoRoot } from '../../src/process.js';
import { dataConverterFor } from '../../src/temporal/connection.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * Another service, in the appliance's own language: the Java program of docs/api.md
 * (java/cg-client-example, Temporal Java SDK from Maven Central, built by scripts/setup.mjs)
 * starts joinNode, pauses it (signal), reads `progress` (query) and aborts it (update), with
 * clusterguard's payload codec, against the orchestrator with the same key ring. No agent runs:
 * the node 127.0.0.210 and master 127.0.0.211 never answer, so the runbook waits on its first step.
 */
const home = path.join(repoRoot, '.tools', 'cg-client-example');
const node = '127.0.0.210';
const master = '127.0.0.211';
const clusterId = `java-${process.pid}`;

describe('a Java service steers a runbook through the Temporal Java SDK, encrypted', () => {
  const ring = { keys: `j1=${randomBytes(32).toString('base64')}`, current: 'j1' };
  let orchestrator: TestOrchestrator;

  before(async () => {
    const dataConverter = await dataConverterFor(ring);
    assert.ok(dataConverter);
    orchestrator = await startTestOrchestrator({ dataConverter });
  });
  after(async () => {
    await orchestrator?.close();
  });

  test('start, signal pause, query progress, update abort, read the failure', async () => {
    assert.ok(
      existsSync(path.join(home, 'cg-client-example.jar')),
      `no ${home}: node scripts/setup.mjs`,
    );
    const { address, namespace } = testServer();
    const run = await execa(
      'java',
      [
        '-cp',
        `${path.join(home, 'cg-client-example.jar')}${path.delimiter}${path.join(home, 'lib', '*')}`,
        'io.clusterguard.example.RunbookClient',
        address,
        namespace,
        orchestrator.taskQueue,
        clusterId,
        node,
        master,
      ],
      {
        env: { CG_CODEC__KEYS: ring.keys, CG_CODEC__CURRENT: ring.current },
        timeout: 120_000,
        reject: false,
      },
    );
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    const said = Object.assign(
      {},
      ...run.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    ) as {
      started?: string;
      progress?: Progress;
      update?: string;
      failure?: { type: string; message: string };
    };
    assert.ok(said.started, run.stdout);
    assert.equal(said.progress?.runbook, 'joinNode');
    assert.equal(said.progress?.clusterId, clusterId);
    assert.equal(said.progress?.paused?.reason, 'paused from Java');
    assert.ok(
      said.progress?.steps.some((s) => s.node === master),
      JSON.stringify(said.progress),
    );
    assert.match(said.update ?? '', /^aborting joinNode/);
    assert.equal(said.failure?.type, 'Aborted');
    assert.match(said.failure?.message ?? '', /aborted from Java/);

    // What Java sent is encrypted in the history, and the orchestrator's ring reads it.
    const connection = await Connection.connect({ address });
    try {
      const raw = new Client({ connection, namespace });
      const workflowId = `cg/${clusterId}/membership`;
      const history = await raw.workflow.getHandle(workflowId, said.started).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const input = started?.input?.payloads?.[0];
      assert.equal(Buffer.from(input?.metadata?.encoding ?? []).toString(), encryptedEncoding);
      assert.ok(
        !Buffer.from(input?.data ?? [])
          .toString('latin1')
          .includes(master),
      );
      const described = await orchestrator.client.workflow.getHandle(workflowId).describe();
      assert.equal(described.status.name, 'FAILED');
      assert.equal(await described.staticSummary(), `joinNode of cluster ${clusterId} (from Java)`);
    } finally {
      await connection.close();
    }
  });
});
