/**
 * OpenTelemetry spans of the node agents' HTTP (docs/operations.md "Traces"): a SERVER span per
 * request the agent's API answers, and a CLIENT span per request an agent (or the CLI) makes to
 * another agent — configuration archives, bundles, backup copies — with the W3C `traceparent`
 * header sent along, so the peer's server span joins the caller's trace.
 *
 * Made by hand with @opentelemetry/api rather than by the instrumentation packages: those patch
 * `node:http` through a module loader hook (which an ESM process run by tsx would need at every
 * entry point) and see only the raw URL, while the agent's requests go out through two clients
 * (Node's fetch, and `node:http` for downloads bound to the node's own address) and its server is
 * Hono, which knows each request's route template. Without a registered tracer provider
 * (`tracing` off, src/observability/tracing.ts) every call here is the API's no-op: no span, no
 * header.
 */
import type { ServerResponse } from 'node:http';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';

/** The instrumentation scope of every span made here. */
export const httpTracerName = 'clusterguard-agent-http';

const tracer = () => trace.getTracer(httpTracerName);

const headersGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/** `/v1/bundles/:sha256{[0-9a-f]{64}}` → `/v1/bundles/:sha256`: the template, not its pattern. */
export function routeTemplate(route: string): string {
  return route.replace(/\{(?:[^{}]|\{[^{}]*\})*\}/g, '');
}

function serverAndPort(url: URL): Attributes {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return { 'server.address': url.hostname, 'server.port': port };
}

/**
 * Hono middleware: one SERVER span per request, named `<METHOD> <route>`, the child of the
 * caller's span when the request carries `traceparent`, else the root of a trace of its own
 * (never of whatever context the server happened to be started in). It ends when the response
 * has been written to the socket (a download's whole body), or was cut off.
 */
export function traceHttpRequests(): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headersGetter);
    const span = tracer().startSpan(
      c.req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': c.req.method,
          'url.path': url.pathname,
          'url.scheme': url.protocol.replace(/:$/, ''),
          ...serverAndPort(url),
        },
      },
      parent,
    );
    await context.with(trace.setSpan(parent, span), next);
    finishServerSpan(c, span);
  };
}

function finishServerSpan(c: Context, span: Span): void {
  // Tracing off: the API's no-op span, nothing to wait for.
  if (!span.isRecording()) return;
  // The last route that matched is the request's route; a wildcard is only our middleware's, so
  // nothing but middleware matched (a path the agent does not serve).
  const route = routeTemplate(routePath(c, -1));
  if (route && !route.endsWith('*')) {
    span.setAttribute('http.route', route);
    span.updateName(`${c.req.method} ${route}`);
  }
  const status = c.res.status;
  span.setAttribute('http.response.status_code', status);
  if (c.error) span.recordException(c.error);
  // A server's 4xx is the client's doing, not a failed span (OpenTelemetry's HTTP conventions).
  if (status >= 500) {
    span.setAttribute('error.type', String(status));
    span.setStatus({ code: SpanStatusCode.ERROR, message: c.error?.message ?? `HTTP ${status}` });
  }
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing || outgoing.closed) {
    span.end();
    return;
  }
  outgoing.once('close', () => {
    if (!outgoing.writableFinished && status < 500) {
      span.setAttribute('error.type', 'response_cut_off');
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: 'the connection closed before the response was written',
      });
    }
    span.end();
  });
}

/** What an outgoing request does with its CLIENT span. */
export interface ClientSpan {
  /** To send with the request: `traceparent` (and `tracestate`); empty with tracing off. */
  headers: Record<string, string>;
  /** The response's status, as soon as it is known. */
  status(code: number): void;
  /** A failure that does not reject (a request that reports its error as a value). */
  fail(error: string): void;
}

/**
 * Runs one outgoing HTTP request (`send`) as a CLIENT span named `<METHOD> <route>`, the child of
 * the active span (an activity's, with tracing on); the span ends when `send` settles, so it
 * covers reading the response's body if `send` reads it. Statuses from 400 on, a rejection, and
 * `fail` mark the span as failed.
 */
export async function traceHttpRequest<T>(
  request: { method: string; url: string; route: string },
  send: (span: ClientSpan) => Promise<T>,
): Promise<T> {
  const url = new URL(request.url);
  const span = tracer().startSpan(`${request.method} ${request.route}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': request.method,
      'url.full': `${url.origin}${url.pathname}`,
      'url.template': request.route,
      ...serverAndPort(url),
    },
  });
  const active = trace.setSpan(context.active(), span);
  const headers: Record<string, string> = {};
  propagation.inject(active, headers);
  const failed = (type: string, message: string) => {
    span.setAttribute('error.type', type);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
  };
  try {
    return await context.with(active, () =>
      send({
        headers,
        status(code) {
          span.setAttribute('http.response.status_code', code);
          if (code >= 400) failed(String(code), `HTTP ${code}`);
        },
        fail: (error) => failed('request_failed', error),
      }),
    );
  } catch (err) {
    span.recordException(err as Error);
    failed((err as Error).name || 'Error', (err as Error).message);
    throw err;
  } finally {
    span.end();
  }
}
