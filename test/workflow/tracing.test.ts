import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { startRunbook } from '../../src/client/index.js';
import { loadAppConfig } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logger.js';
import { repoRoot } from '../../src/process.js';
import { setupTracing, type Tracing } from '../../src/observability/tracing.js';
import { startNodeAgent, type RunningNodeAgent } from '../../worker/node-agent.js';
import { freePortOnAll } from '../helpers/agents.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * Tracing from end to end, with the real Temporal server of the run: this process is the
 * client, the orchestrator (workflows) and a node agent on 127.0.0.221 (its activities), each
 * with the interceptors of src/observability/tracing.ts, their spans kept in memory. One
 * pingCluster makes one trace: the client's start, the workflow's run, the activity's start in
 * the workflow and its run on the agent, each the parent of the next.
 */
const node = '127.0.0.221';

describe('tracing: client → workflow → activity on the agent, one trace', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let orchestrator: TestOrchestrator;
  let agent: RunningNodeAgent;
  let dir: string;

  before(async () => {
    const processor = new SimpleSpanProcessor(exporter);
    const t = setupTracing({ console: false }, 'tracing-test', processor);
    assert.ok(t);
    tracing = t;
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-tracing-'));
    orchestrator = await startTestOrchestrator({ tracing });
    const { address, namespace } = testServer();
    const config = await loadAppConfig({
      env: {
        CG_TEMPORAL__ADDRESS: address,
        CG_TEMPORAL__NAMESPACE: namespace,
        CG_NODE__ADDRESS: node,
        CG_NODE__ROOT: path.join(dir, node),
        CG_AGENT__TOKEN: randomBytes(24).toString('base64url'),
        CG_AGENT__PORT: String(await freePortOnAll([node])),
        CG_MIDDLEWARE__BIN_DIR: path.join(repoRoot, '.tools'),
      },
    });
    agent = await startNodeAgent(config, createLogger('node-agent', 'warn'), {
      activity: tracing.activityInterceptors,
    });
  });
  after(async () => {
    await agent?.stop();
    await orchestrator?.close();
    await tracing?.shutdown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pingCluster: the spans and their parents', async () => {
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: 'tracing', nodes: [node] },
      { taskQueue: orchestrator.taskQueue },
    );
    const result = await handle.result();
    assert.deepEqual(
      result.nodes.map((n) => n.address),
      [node],
    );
    await tracing.flush();

    const spans = exporter.getFinishedSpans();
    const byName = (name: string): ReadableSpan => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} span in ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const start = byName('StartWorkflow:pingCluster');
    const run = byName('RunWorkflow:pingCluster');
    const startActivity = byName('StartActivity:pingNode');
    const runActivity = byName('RunActivity:pingNode');

    const traceId = start.spanContext().traceId;
    for (const s of [run, startActivity, runActivity])
      assert.equal(s.spanContext().traceId, traceId, `${s.name} is in the client's trace`);
    assert.equal(start.parentSpanId, undefined, 'the client span is the root');
    assert.equal(run.parentSpanId, start.spanContext().spanId);
    assert.equal(startActivity.parentSpanId, run.spanContext().spanId);
    assert.equal(runActivity.parentSpanId, startActivity.spanContext().spanId);
    assert.equal(start.attributes.temporalWorkflowId, handle.workflowId);
    assert.equal(runActivity.attributes.temporalWorkflowId, handle.workflowId);
    assert.equal(start.resource.attributes['service.name'], 'tracing-test');
  });
});
