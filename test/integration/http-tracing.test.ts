import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { fetchToFile } from '../../activities/distribution-activities.js';
import {
  createAgentApp,
  startAgentServer,
  type RunningAgentServer,
} from '../../src/agent/server.js';
import { NodeLayout } from '../../src/config/layout.js';
import type { Logger } from '../../src/logger.js';
import { setupTracing } from '../../src/observability/tracing.js';
import { freePort } from '../../src/temporal/dev-server.js';

/**
 * A node's download of its configuration archive (joinNode's `downloadDistribution`, over
 * `node:http` from the node's own address) on a real socket at 127.0.0.223, with tracing on:
 * the request is a CLIENT span under the activity's, and the agent's SERVER span, which ends
 * once the archive is written, is its child. A refused download fails the CLIENT span.
 */
const node = '127.0.0.223';
const route = '/v1/cluster/config/actions/download';
const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describe('trace context across a configuration download, on a real socket', () => {
  const exporter = new InMemorySpanExporter();
  const token = randomBytes(24).toString('base64url');
  let root: string;
  let server: RunningAgentServer;

  before(async () => {
    assert.ok(setupTracing({ console: false }, 'download-test', new SimpleSpanProcessor(exporter)));
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-http-tracing-'));
    const layout = new NodeLayout(root);
    const archive = layout.distributionFileFor(node);
    await mkdir(path.dirname(archive), { recursive: true });
    // Large enough to be written in several chunks.
    await writeFile(archive, randomBytes(512 * 1024));
    const app = createAgentApp({
      address: node,
      layout,
      token,
      logger: quiet,
      agentVersion: 'test',
      maxBodyBytes: 1024,
    });
    server = await startAgentServer(app, node, await freePort(node));
  });
  after(async () => {
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** The request's spans under a span of its own (an activity's, in an agent). */
  async function download(forNode: string) {
    exporter.reset();
    const activity = trace.getTracer('test').startSpan('RunActivity:downloadDistribution');
    const attempt = await context.with(trace.setSpan(context.active(), activity), () =>
      fetchToFile(
        `${server.url}${route}?node=${forNode}`,
        path.join(root, `download-${forNode}.tmp`),
        { self: node, token },
        AbortSignal.timeout(10_000),
        route,
      ),
    );
    activity.end();
    const of = (kind: SpanKind) => exporter.getFinishedSpans().find((s) => s.kind === kind);
    const deadline = Date.now() + 5000;
    while (!of(SpanKind.SERVER) && Date.now() < deadline) await sleep(20);
    const client = of(SpanKind.CLIENT);
    const answer = of(SpanKind.SERVER);
    assert.ok(
      client && answer,
      exporter
        .getFinishedSpans()
        .map((s) => s.name)
        .join(', '),
    );
    return { attempt, activity, client, answer };
  }

  const links = (
    activity: { spanContext(): { spanId: string; traceId: string } },
    client: ReadableSpan,
    answer: ReadableSpan,
  ) => {
    assert.equal(client.parentSpanId, activity.spanContext().spanId);
    assert.equal(answer.parentSpanId, client.spanContext().spanId);
    for (const s of [client, answer]) {
      assert.equal(s.spanContext().traceId, activity.spanContext().traceId);
      assert.equal(s.name, `GET ${route}`);
    }
  };

  test("the node's own archive: activity → request → the agent's answer, one trace", async () => {
    const { attempt, activity, client, answer } = await download(node);
    assert.ok(attempt.ok, JSON.stringify(attempt));
    assert.equal(attempt.bytes, 512 * 1024);
    links(activity, client, answer);
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(client.status.code, SpanStatusCode.UNSET);
    assert.equal(answer.attributes['http.route'], route);
    assert.equal(answer.attributes['http.response.status_code'], 200);
  });

  test("another node's archive: refused, the CLIENT span failed, the agent's 403 recorded", async () => {
    const { attempt, activity, client, answer } = await download('127.0.0.224');
    assert.equal(attempt.ok, false);
    links(activity, client, answer);
    assert.equal(client.attributes['http.response.status_code'], 403);
    assert.equal(client.status.code, SpanStatusCode.ERROR);
    assert.equal(answer.attributes['http.response.status_code'], 403);
  });
});
