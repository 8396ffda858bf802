import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { Agent } from 'undici';
import type { AppConfig } from '../config/app-config.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { traceHttpRequest } from '../observability/http-tracing.js';

export type AgentTlsOptions = NonNullable<AppConfig['agent']['tls']>;

/** What a server needs to serve HTTPS: its certificate and key, and whom it asks for one. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Trusted for client certificates; required with `requireClientCert`. */
  ca?: Buffer;
  requireClientCert?: boolean;
}

/**
 * How a client (another agent, the CLI) reaches agents over HTTPS: the CA that signed their
 * certificates (else the system CAs) and, for mutual TLS, its own certificate and key.
 */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

async function readPem(file: string, what: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `cannot read the ${what} ${file} (${key}): ${(err as Error).message}`,
    );
  }
}

/** Reads `agent.tls`: the agent serves with it and presents it to its peers. */
export async function loadAgentTls(
  options: AgentTlsOptions | undefined,
): Promise<(ServerTls & ClientTls) | undefined> {
  if (!options) return undefined;
  const [cert, key, ca] = await Promise.all([
    readPem(options.certFile, 'agent certificate', 'agent.tls.certFile'),
    readPem(options.keyFile, 'agent key', 'agent.tls.keyFile'),
    options.caFile ? readPem(options.caFile, 'agent CA', 'agent.tls.caFile') : undefined,
  ]);
  return { cert, key, ...(ca ? { ca } : {}), requireClientCert: options.requireClientCert };
}

/** Reads a client's files (the CLI's `--agent-ca`, `--agent-cert`, `--agent-key`). */
export async function loadClientTls(files: {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}): Promise<ClientTls | undefined> {
  if (!files.caFile && !files.certFile && !files.keyFile) return undefined;
  if (!files.certFile !== !files.keyFile) {
    throw new ClusterGuardError(
      'InvalidInput',
      'give both a client certificate and its key for the agent, or neither',
    );
  }
  const [ca, cert, key] = await Promise.all([
    files.caFile ? readPem(files.caFile, 'agent CA', '--agent-ca') : undefined,
    files.certFile ? readPem(files.certFile, 'client certificate', '--agent-cert') : undefined,
    files.keyFile ? readPem(files.keyFile, 'client key', '--agent-key') : undefined,
  ]);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

/** `https://<node>:<port>` when the agents serve TLS, else `http://…`. */
export function agentBaseUrl(node: string, port: number, tls: ClientTls | undefined): string {
  return `${tls ? 'https' : 'http'}://${node}:${port}`;
}

/**
 * `fetch` options that make Node's fetch trust the agents' CA and present a client
 * certificate. Node's own fetch is kept (not undici's) because its FormData bodies only
 * serialise there; an undici Agent is accepted as its dispatcher. Close it after use.
 */
export function tlsDispatcher(tls: ClientTls, localAddress?: string): Dispatcher {
  return new Agent({
    connect: {
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      ...(localAddress ? { localAddress } : {}),
    },
  });
}

/**
 * One request to an agent, its response consumed by `use`: over the agents' TLS when given,
 * always with a dispatcher for this request alone, closed once `use` is done, so no pooled
 * socket outlives it. With tracing on it is a CLIENT span (`route`, the path's template, names it) and
 * carries the trace context to the agent (src/observability/http-tracing.ts).
 */
export async function agentRequest<T>(
  url: string,
  init: RequestInit,
  tls: ClientTls | undefined,
  use: (res: Response) => T | Promise<T>,
  route = new URL(url).pathname,
): Promise<T> {
  const method = (init.method ?? 'GET').toUpperCase();
  return traceHttpRequest({ method, url, route }, async (span) => {
    const headers = new Headers(init.headers);
    for (const [key, value] of Object.entries(span.headers)) headers.set(key, value);
    const traced = { ...init, headers };
    const answered = async (res: Response) => {
      span.status(res.status);
      return use(res);
    };
    // Plain HTTP too gets a dispatcher of its own: on Node's shared pool, an agent closing a
    // kept-alive socket as the next request went out on it failed that request ("other side
    // closed", twice in CI on the first bundle upload of a run).
    const dispatcher = tls && !url.startsWith('http:') ? tlsDispatcher(tls) : new Agent();
    try {
      // The package's Dispatcher type and the one Node's fetch declares differ only nominally.
      return await answered(await fetch(url, { ...traced, dispatcher } as unknown as RequestInit));
    } finally {
      await dispatcher.close();
    }
  });
}

/** Node's TLS error codes an operator can act on, said in words. */
export function describeTlsError(err: unknown, url: string): string | undefined {
  type Coded = { code?: string; message?: string };
  const cause: Coded = (err as { cause?: Coded }).cause ?? (err as Coded);
  const code = cause.code;
  switch (code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `${url}: the agent's certificate is not signed by a trusted CA (${code}); give the agents' CA (agent.tls.caFile, or --agent-ca for the CLI)`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `${url}: the agent's certificate does not name this address (${cause.message ?? code}); issue it with the node's address as a subjectAltName`;
    case 'CERT_HAS_EXPIRED':
      return `${url}: the agent's certificate has expired; renew it`;
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `${url}: TLS failed (${cause.message ?? code}); is the agent serving HTTPS? (agent.tls on every agent)`;
    default:
      return undefined;
  }
}
