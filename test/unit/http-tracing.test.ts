import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { createAgentApp } from '../../src/agent/server.js';
import { NodeLayout } from '../../src/config/layout.js';
import { routeTemplate, traceHttpRequest } from '../../src/observability/http-tracing.js';
import { setupTracing } from '../../src/observability/tracing.js';
import type { Logger } from '../../src/logger.js';

/**
 * The agents' HTTP spans (src/observability/http-tracing.ts) without a socket: the agent's app
 * answers `app.request()`, and an outgoing request is a stand-in `send`. The real requests
 * between agents are test/workflow/tracing.test.ts's and test/integration/http-tracing.test.ts's.
 */
const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const traceId = '0af7651916cd43dd8448eb211c80319c';
const callerSpanId = 'b7ad6b7169203331';

describe('HTTP spans of the node agent', () => {
  const exporter = new InMemorySpanExporter();
  let root: string;
  let app: ReturnType<typeof createAgentApp>;
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
  const only = (): ReadableSpan => {
    assert.equal(
      spans().length,
      1,
      spans()
        .map((s) => s.name)
        .join(', '),
    );
    return spans()[0]!;
  };

  before(async () => {
    assert.ok(
      setupTracing({ console: false }, 'http-tracing-test', new SimpleSpanProcessor(exporter)),
    );
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-http-tracing-'));
    app = createAgentApp({
      address: '127.0.0.1',
      layout: new NodeLayout(root),
      token: 'a-token-long-enough-for-the-test',
      logger: quiet,
      agentVersion: 'test',
      maxBodyBytes: 1024,
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => exporter.reset());

  test("a request with traceparent: a SERVER span, the caller's child, named by its route", async () => {
    const res = await app.request('http://127.0.0.1:7700/healthz', {
      headers: { traceparent: `00-${traceId}-${callerSpanId}-01` },
    });
    assert.equal(res.status, 200);
    const span = only();
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.name, 'GET /healthz');
    assert.equal(span.spanContext().traceId, traceId);
    assert.equal(span.parentSpanId, callerSpanId);
    assert.equal(span.attributes['http.route'], '/healthz');
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.attributes['server.address'], '127.0.0.1');
    assert.equal(span.attributes['server.port'], 7700);
  });

  test('without traceparent: the root of its own trace, whatever span is active around the server', async () => {
    const outer = trace.getTracer('test').startSpan('around the server');
    await context.with(trace.setSpan(context.active(), outer), () =>
      app.request('http://127.0.0.1:7700/healthz'),
    );
    outer.end();
    const span = spans().find((s) => s.kind === SpanKind.SERVER);
    assert.ok(span);
    assert.equal(span.parentSpanId, undefined);
    assert.notEqual(span.spanContext().traceId, outer.spanContext().traceId);
  });

  test('a refusal keeps the route and its 4xx, and is not a failed span; an unknown path has no route', async () => {
    // Over agent.maxBodyBytes, refused from its Content-Length before the token is looked at.
    const refused = await app.request('http://127.0.0.1:7700/guard/v1/config/actions/download', {
      method: 'POST',
      headers: { 'content-length': '4096' },
      body: 'x'.repeat(4096),
    });
    assert.equal(refused.status, 413);
    const span = only();
    assert.equal(span.name, 'POST /guard/v1/config/actions/download');
    assert.equal(span.attributes['http.response.status_code'], 413);
    assert.equal(span.status.code, SpanStatusCode.UNSET);

    exporter.reset();
    const missing = await app.request('http://127.0.0.1:7700/nowhere');
    assert.equal(missing.status, 404);
    assert.equal(only().name, 'GET');
    assert.equal(only().attributes['http.route'], undefined);
  });

  test("a route's pattern is left out of its template", () => {
    assert.equal(routeTemplate('/v1/bundles/:sha256{[0-9a-f]{64}}'), '/v1/bundles/:sha256');
    assert.equal(
      routeTemplate('/v1/cluster/data/archives/:kind'),
      '/v1/cluster/data/archives/:kind',
    );
  });

  test('an outgoing request: a CLIENT span under the active one, its traceparent sent', async () => {
    const parent = trace.getTracer('test').startSpan('activity');
    let sent: Record<string, string> = {};
    const answer = await context.with(trace.setSpan(context.active(), parent), () =>
      traceHttpRequest(
        {
          method: 'GET',
          url: 'https://127.0.0.12:7700/v1/bundles/abc?x=1',
          route: '/v1/bundles/:sha256',
        },
        (span) => {
          sent = span.headers;
          span.status(200);
          return Promise.resolve('body');
        },
      ),
    );
    parent.end();
    assert.equal(answer, 'body');
    const client = spans().find((s) => s.kind === SpanKind.CLIENT);
    assert.ok(client);
    assert.equal(client.name, 'GET /v1/bundles/:sha256');
    assert.equal(client.parentSpanId, parent.spanContext().spanId);
    assert.equal(
      sent.traceparent,
      `00-${parent.spanContext().traceId}-${client.spanContext().spanId}-01`,
      'the peer becomes the child of the request, not of the activity',
    );
    assert.equal(client.attributes['url.full'], 'https://127.0.0.12:7700/v1/bundles/abc');
    assert.equal(client.attributes['server.port'], 7700);
    assert.equal(client.status.code, SpanStatusCode.UNSET);
  });

  test('a 4xx answer, a failure reported as a value, and a rejection each fail the CLIENT span', async () => {
    const request = { method: 'GET', url: 'http://127.0.0.12:7700/x', route: '/x' };
    await traceHttpRequest(request, (span) => Promise.resolve(span.status(403)));
    await traceHttpRequest(request, (span) => Promise.resolve(span.fail('connection refused')));
    await assert.rejects(
      traceHttpRequest(request, () => Promise.reject(new Error('aborted'))),
      /aborted/,
    );
    assert.deepEqual(
      spans().map((s) => [s.status.code, s.status.message, s.attributes['error.type']]),
      [
        [SpanStatusCode.ERROR, 'HTTP 403', '403'],
        [SpanStatusCode.ERROR, 'connection refused', 'request_failed'],
        [SpanStatusCode.ERROR, 'aborted', 'Error'],
      ],
    );
  });

  test('with tracing off: no span and no header', async () => {
    trace.disable();
    propagation.disable();
    let sent: Record<string, string> | undefined;
    await traceHttpRequest({ method: 'GET', url: 'http://127.0.0.12:7700/x', route: '/x' }, (s) => {
      sent = s.headers;
      return Promise.resolve();
    });
    assert.deepEqual(sent, {});
    assert.equal(spans().length, 0);
  });
});
