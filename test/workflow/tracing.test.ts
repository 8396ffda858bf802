import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { pushBundle } from '../../src/bundles/client.js';
import { startRunbook } from '../../src/client/index.js';
import { loadAppConfig } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logger.js';
import { repoRoot } from '../../src/process.js';
import { setupTracing, type Tracing } from '../../src/observability/tracing.js';
import { startNodeAgent, type RunningNodeAgent } from '../../worker/node-agent.js';
import { freePortOnAll } from '../helpers/agents.js';
import { writeTestJar } from '../helpers/bundles.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * Tracing from end to end, with the real Temporal server of the run: this process is the
 * client, the orchestrator (workflows) and two node agents on 127.0.0.221 and .222 (their
 * activities and HTTP APIs), each with the interceptors of src/observability/tracing.ts and the
 * HTTP spans of src/observability/http-tracing.ts, their spans kept in memory. One pingCluster
 * makes one trace: the client's start, the workflow's run, the activity's start in the workflow
 * and its run on the agent, each the parent of the next. A rollout whose install on .221 fetches
 * the bundle from .222 carries the trace on over HTTP: the activity's run, its request to the
 * peer, and the peer's answer to it. A runbook started through an agent's API starts under the
 * span of that request.
 */
const node = '127.0.0.221';
const peer = '127.0.0.222';

function spanNamed(spans: ReadableSpan[], name: string, kind?: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.name === name && (kind === undefined || s.kind === kind));
  assert.equal(found.length, 1, `one ${name} span in ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

describe('tracing: client → workflow → activity on the agent → its peer, one trace', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let orchestrator: TestOrchestrator;
  const agents: RunningNodeAgent[] = [];
  let dir: string;
  let port: number;
  const token = randomBytes(24).toString('base64url');

  before(async () => {
    const processor = new SimpleSpanProcessor(exporter);
    const t = setupTracing({ console: false }, 'tracing-test', processor);
    assert.ok(t);
    tracing = t;
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-tracing-'));
    orchestrator = await startTestOrchestrator({ tracing });
    const { address, namespace } = testServer();
    // Every agent of a cluster listens on the same port: that is how they reach each other.
    port = await freePortOnAll([node, peer]);
    for (const n of [node, peer]) {
      const config = await loadAppConfig({
        env: {
          CG_TEMPORAL__ADDRESS: address,
          CG_TEMPORAL__NAMESPACE: namespace,
          CG_NODE__ADDRESS: n,
          CG_NODE__ROOT: path.join(dir, n),
          CG_AGENT__TOKEN: token,
          CG_AGENT__PORT: String(port),
          CG_MIDDLEWARE__BIN_DIR: path.join(repoRoot, '.tools'),
          CG_EVENTS__ENABLED: 'false',
          // The runbooks the agents' API starts go to this file's orchestrator, and only to it.
          CG_TEMPORAL__TASK_QUEUE: orchestrator.taskQueue,
          // No middleware: these standalone agents would look for their cluster's ZooKeeper on
          // 127.0.0.1 to record the rolled-out bundle as desired, which is not this test's.
          CG_MIDDLEWARE__ENABLED: '',
          CG_AGENT__SUPERVISOR__ENABLED: 'false',
        },
      });
      agents.push(
        await startNodeAgent(config, createLogger('node-agent', 'warn'), {
          activity: tracing.activityInterceptors,
        }),
      );
    }
  });
  /**
   * A server span ends once its answer is written to the socket, which may be a moment after
   * the client has read it.
   */
  async function waitForSpan(name: string, kind: SpanKind): Promise<ReadableSpan> {
    const deadline = Date.now() + 5000;
    const matching = () =>
      exporter.getFinishedSpans().filter((s) => s.name === name && s.kind === kind);
    while (matching().length === 0 && Date.now() < deadline) await sleep(50);
    return spanNamed(matching(), name, kind);
  }
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
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
    const byName = (name: string) => spanNamed(spans, name);
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

  test("rolloutBundle: the agent fetches the bundle from its peer, in the runbook's trace", async () => {
    const jar = await writeTestJar(path.join(dir, 'traced.jar'), {
      symbolicName: 'com.example.traced',
      version: '1.0.0',
    });
    // The CLI's push, under a span of this test: the peer's server span is its request's child.
    const push = await trace
      .getTracer('tracing-test')
      .startActiveSpan('push the bundle', async (span) => {
        try {
          return await pushBundle({ url: `http://${peer}:${port}`, token }, jar.file);
        } finally {
          span.end();
        }
      });
    assert.equal(push.sha256, jar.sha256);
    const pushed = exporter.getFinishedSpans();
    const pushSpan = spanNamed(pushed, 'push the bundle');
    const upload = spanNamed(pushed, 'POST /v1/bundles', SpanKind.CLIENT);
    assert.equal(upload.parentSpanId, pushSpan.spanContext().spanId);
    const stored = await waitForSpan('POST /v1/bundles', SpanKind.SERVER);
    assert.equal(stored.parentSpanId, upload.spanContext().spanId, 'traceparent was honoured');
    assert.equal(stored.spanContext().traceId, pushSpan.spanContext().traceId);
    assert.equal(stored.attributes['http.response.status_code'], 201);
    exporter.reset();

    const handle = await startRunbook(
      orchestrator.client,
      'rolloutBundle',
      { clusterId: 'tracing', sha256: jar.sha256, nodes: [node, peer], agentTimeoutSeconds: 20 },
      { symbolicName: 'com.example.traced', taskQueue: orchestrator.taskQueue },
    );
    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    await tracing.flush();

    const fetchName = 'GET /v1/bundles/:sha256';
    const server = await waitForSpan(fetchName, SpanKind.SERVER);
    const spans = exporter.getFinishedSpans();
    const start = spanNamed(spans, 'StartWorkflow:rolloutBundle');
    const client = spanNamed(spans, fetchName, SpanKind.CLIENT);
    const install = spans.find((s) => s.spanContext().spanId === client.parentSpanId);

    const traceId = start.spanContext().traceId;
    for (const s of [client, server])
      assert.equal(s.spanContext().traceId, traceId, `${s.name} is in the runbook's trace`);
    assert.equal(install?.name, 'RunActivity:installBundle', "the request is the install's");
    assert.equal(install.spanContext().traceId, traceId);
    assert.equal(server.parentSpanId, client.spanContext().spanId, 'the peer answers the request');
    assert.equal(client.attributes['server.address'], peer);
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['http.route'], '/v1/bundles/:sha256');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['url.path'], `/v1/bundles/${jar.sha256}`);
  });

  test("a runbook started through the agent's API: the request's span is its parent", async () => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
    };
    const operator = trace.getTracer('tracing-test').startSpan('operator asks for a verify');
    propagation.inject(trace.setSpan(context.active(), operator), headers);
    const res = await fetch(`http://${node}:${port}/v1/cluster/data/actions/verify`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ backupId: '20260101T000000Z-traced' }),
    });
    operator.end();
    const answer = (await res.json()) as { workflowId?: string; error?: string };
    assert.equal(res.status, 202, answer.error);
    // Its outcome is not this test's (there is no such backup): stopped, not left to retry.
    await orchestrator.client.workflow
      .getHandle(answer.workflowId ?? '')
      .terminate('tracing test: only its start is looked at')
      .catch(() => undefined);
    await tracing.flush();

    const request = await waitForSpan('POST /v1/cluster/data/actions/:action', SpanKind.SERVER);
    const start = spanNamed(exporter.getFinishedSpans(), 'StartWorkflow:verifyBackup');
    assert.equal(request.parentSpanId, operator.spanContext().spanId);
    assert.equal(start.parentSpanId, request.spanContext().spanId);
    assert.equal(start.spanContext().traceId, operator.spanContext().traceId);
    assert.equal(request.attributes['http.response.status_code'], 202);
  });
});
