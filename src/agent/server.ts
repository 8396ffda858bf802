import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Readable } from 'node:stream';
import { serve, type ServerType } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { isNodeAddress } from '../contracts/addresses.js';
import { traceHttpRequests } from '../observability/http-tracing.js';
import type { NodeLayout } from '../config/layout.js';
import type { Logger } from '../logger.js';
import { bearerToken, tokenMatches } from '../auth.js';
import type { ServerTls } from './tls.js';

export interface AgentServerDeps {
  address: string;
  layout: NodeLayout;
  token: string;
  logger: Logger;
  agentVersion: string;
  maxBodyBytes: number;
  /** Extra health facts (cluster.json state, worker state); must not contain secrets. */
  health?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /**
   * Further `/v1/…` routes, one module per feature (data actions, bundles); each is mounted
   * behind the token check and the body limit.
   */
  routes?: readonly AgentRoutes[];
}

/** Mounts one feature's routes on the agent's app, behind authentication. */
export type AgentRoutes = (app: Hono, deps: AgentServerDeps) => void;

/**
 * The addresses and names a verified client certificate carries (subjectAltName IP and DNS
 * entries); undefined when the connection is not TLS or the client showed no certificate.
 */
function clientCertificateNames(env: { incoming?: IncomingMessage }): string[] | undefined {
  const socket = env.incoming?.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  return (cert.subjectaltname ?? '')
    .split(',')
    .map((entry) => entry.trim().replace(/^(IP Address|DNS):/, ''))
    .filter(Boolean);
}

/** IPv4-mapped IPv6 (`::ffff:127.0.0.12`) → `127.0.0.12`. */
function plainAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:/, '');
}

/** The old guard service's download body (docs/design.md); `nodes` is not needed to answer. */
const legacyDownloadSchema = z.looseObject({
  nodes: z.array(z.string()).optional(),
  currentNode: z.string().min(1).max(253),
});

function problem(status: number, error: string, hint?: string) {
  return { status, body: { error, ...(hint ? { hint } : {}) } };
}

/**
 * The node agent's HTTP API (docs/design.md). Every route but `/healthz` needs the cluster token;
 * a node may download only its own configuration archive.
 */
export function createAgentApp(deps: AgentServerDeps): Hono {
  const app = new Hono();
  // First, so that the span covers every refusal too (a wrong token, a body over the limit).
  app.use('*', traceHttpRequests());

  app.onError((err, c) => {
    // Hono's own refusals (a body over the limit, a body that does not parse) are the client's
    // doing: they keep their 4xx status and say why.
    if (err instanceof HTTPException && err.status < 500) {
      deps.logger.warn('request refused', {
        path: c.req.path,
        status: err.status,
        error: err.message,
      });
      return c.json({ error: err.message || 'bad request' }, err.status);
    }
    deps.logger.error('request failed', { path: c.req.path, error: err.message });
    return c.json({ error: 'internal error; see the agent log' }, 500);
  });

  app.get('/healthz', async (c) =>
    c.json({
      status: 'ok',
      address: deps.address,
      agentVersion: deps.agentVersion,
      ...(deps.health ? await deps.health() : {}),
    }),
  );

  // A declared Content-Length over the limit is refused from the headers, before any body is read.
  const tooLarge = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: (c) =>
      c.json(
        {
          error: `the request body is larger than this agent accepts (${deps.maxBodyBytes} bytes)`,
          hint: 'raise agent.maxBodyBytes in the agent config',
        },
        413,
      ),
  });
  const authenticated: MiddlewareHandler = async (c, next) => {
    if (!tokenMatches(bearerToken(c.req.header('authorization')), deps.token)) {
      const from = plainAddress(getConnInfo(c).remote.address);
      deps.logger.warn('refused request without a valid cluster token', {
        method: c.req.method,
        path: c.req.path,
        from,
      });
      c.header('WWW-Authenticate', 'Bearer realm="clusterguard"');
      return c.json(
        {
          error: 'missing or wrong cluster token',
          hint: 'send Authorization: Bearer <cluster token>',
        },
        401,
      );
    }
    await next();
  };
  app.use('/v1/*', tooLarge, authenticated);
  // The old guard service's path prefix (docs/design.md): its download request, same rules.
  app.use('/guard/v1/*', tooLarge, authenticated);

  app.get('/v1/cluster/config/actions/download', (c) => download(c, c.req.query('node')));
  // The old guard service's request (docs/design.md): POST, JSON `{nodes, currentNode}`.
  app.post('/guard/v1/config/actions/download', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    const parsed = legacyDownloadSchema.safeParse(body);
    if (!parsed.success) {
      return c.json(
        {
          error: 'the body must be JSON {"nodes": [...], "currentNode": "<address>"}',
          hint: 'currentNode names the node whose configuration archive is asked for',
        },
        400,
      );
    }
    return download(c, parsed.data.currentNode);
  });

  async function download(c: Context, node: string | undefined) {
    const from = plainAddress(getConnInfo(c).remote.address);
    let refusal: ReturnType<typeof problem> | undefined;
    if (!node || !isNodeAddress(node)) {
      refusal = problem(400, 'query parameter node must be a node address (IPv4 or host name)');
    } else if (from !== node) {
      // The requester's own address is its identity: the archive holds that node's keys.
      refusal = problem(
        403,
        `node ${from ?? 'unknown'} may not download the configuration of node ${node}`,
        'each node downloads only its own archive, from its own address',
      );
    } else {
      // Under mutual TLS the certificate must name the node too: an address alone can be
      // borrowed on a shared network, a certificate's key cannot.
      const names = clientCertificateNames(c.env as { incoming?: IncomingMessage });
      if (names && !names.includes(node)) {
        refusal = problem(
          403,
          `the client certificate of ${from} names ${names.join(', ') || 'no address'}, not node ${node}`,
          "issue each agent's certificate with its node address as a subjectAltName",
        );
      }
    }
    if (refusal || !node) {
      const r = refusal ?? problem(400, 'missing node');
      deps.logger.warn('refused configuration download', { node, from, status: r.status });
      return c.json(r.body, r.status as 400 | 403);
    }
    const file = deps.layout.distributionFileFor(node);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      return c.json(
        {
          error: `no configuration archive for node ${node} on ${deps.address} yet`,
          hint: 'the master writes it while bootstrapping the cluster; retry shortly',
        },
        404,
      );
    }
    deps.logger.info('serving configuration archive', { node, bytes: size });
    c.header('Content-Type', 'application/zip');
    c.header('Content-Length', String(size));
    c.header('Content-Disposition', `attachment; filename="${node}.zip"`);
    return c.body(Readable.toWeb(createReadStream(file)) as ReadableStream);
  }

  for (const mount of deps.routes ?? []) mount(app, deps);

  return app;
}

export interface RunningAgentServer {
  server: ServerType;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the agent's API on `host:port`, over HTTPS when `tls` is given; resolves once
 * listening, rejects on bind errors.
 */
export async function startAgentServer(
  app: Hono,
  host: string,
  port: number,
  tls?: ServerTls,
): Promise<RunningAgentServer> {
  const options = tls
    ? {
        createServer: createHttpsServer,
        serverOptions: {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
        },
      }
    : {};
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: host, port, ...options },
      (info: AddressInfo) => {
        resolve({
          server,
          url: `${tls ? 'https' : 'http'}://${host}:${info.port}`,
          close: () =>
            new Promise<void>((res) => {
              server.close(() => res());
              // Keep-alive sockets would hold close() open; a stopping agent drops them.
              if ('closeAllConnections' in server) server.closeAllConnections();
            }),
        });
      },
    );
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `agent port ${host}:${port} is already in use: stop the process holding it or set CG_AGENT__PORT`,
            )
          : err.code === 'EADDRNOTAVAIL'
            ? new Error(
                `cannot listen on ${host}:${port}: the address is not on this machine (set CG_AGENT__HOST)`,
              )
            : err,
      );
    });
  });
}
