import { lookup } from 'node:dns/promises';
import http2 from 'node:http2';
import type { SecureClientSessionOptions } from 'node:http2';
import type { TLSConfig } from '@temporalio/client';
import { connectOptionsSchema, tlsConfig, type ConnectOptions } from '../client/connect.js';
import { checked } from '../contracts/validation.js';

/**
 * Before the Temporal client connects (it would retry for its whole deadline and then say only
 * "Failed to connect before the deadline"), the CLI reaches the frontend itself once: the host
 * name, TCP, TLS and an HTTP/2 session, each within the connect timeout. A failure names its
 * cause: unknown host, connection refused, no answer, a TLS error, not an HTTP/2 server
 * (docs/cli.md, "Exit codes").
 */

export class ProbeFailure extends Error {}

function hostAndPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port > 0 && port < 65536)) {
    throw new ProbeFailure(`the address is not host:port (e.g. 127.0.0.1:7233)`);
  }
  return { host: m[1], port };
}

const tlsCodes =
  /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_|EPROTO$|HOSTNAME_MISMATCH)/;

/** The words for a socket, TLS or HTTP/2 error; `tls` says whether TLS was asked for. */
export function causeOf(err: NodeJS.ErrnoException, host: string, tls: boolean): string {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return `connection refused: nothing listens there`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return `unknown host ${host}`;
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `host unreachable (${code})`;
  if (code === 'ECONNRESET' && !tls) {
    return 'the connection was reset: not an HTTP/2 (gRPC) server, or one that wants TLS (--tls)';
  }
  if (tlsCodes.test(code) || /SSL|TLS|certificate/i.test(err.message)) {
    const plain = /wrong version number|packet length too long/i.test(err.message);
    return (
      `TLS error: ${err.message}` + (plain ? ' (the server does not speak TLS: try --no-tls)' : '')
    );
  }
  if (code.startsWith('ERR_HTTP2') || /protocol error/i.test(err.message)) {
    return `not an HTTP/2 (gRPC) server: ${err.message}`;
  }
  return err.message || code;
}

function secureOptions(tls: TLSConfig | boolean, host: string): SecureClientSessionOptions {
  const t = typeof tls === 'object' ? tls : {};
  return {
    servername: t.serverNameOverride ?? host,
    ALPNProtocols: ['h2'],
    ...(t.serverRootCACertificate ? { ca: Buffer.from(t.serverRootCACertificate) } : {}),
    ...(t.clientCertPair
      ? { cert: Buffer.from(t.clientCertPair.crt), key: Buffer.from(t.clientCertPair.key) }
      : {}),
  };
}

/**
 * Reaches `address` as the client would (TLS as configured), within `timeoutMs`; resolves once
 * the server has sent its HTTP/2 settings, else throws a `ProbeFailure` naming the cause.
 */
export async function probeFrontend(options: ConnectOptions, timeoutMs: number): Promise<void> {
  const { host, port } = hostAndPort(options.address ?? '127.0.0.1:7233');
  const tls = await tlsConfig(
    checked(connectOptionsSchema, options, 'connection options', 'InvalidConfig'),
  );
  const secure = tls !== false;
  let timer: NodeJS.Timeout | undefined;
  let session: http2.ClientHttp2Session | undefined;
  const seconds = `${Math.round(timeoutMs / 100) / 10} s`;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ProbeFailure(
            session
              ? `no answer within ${seconds}: connected, but no HTTP/2 (gRPC) answer` +
                  (secure ? '' : ' (does the server want TLS? --tls)')
              : `no answer within ${seconds} (host down, or a firewall drops the packets)`,
          ),
        ),
      timeoutMs,
    );
  });
  const reach = (async () => {
    // The name first: an unknown host is said so, not left to a generic socket error.
    await lookup(host).catch((err: NodeJS.ErrnoException) => {
      throw new ProbeFailure(causeOf(err, host, secure));
    });
    await new Promise<void>((resolve, reject) => {
      const authority = `${secure ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
      session = http2.connect(authority, secure ? secureOptions(tls, host) : {});
      session.once('remoteSettings', () => resolve());
      session.once('error', (err: NodeJS.ErrnoException) =>
        reject(new ProbeFailure(causeOf(err, host, secure))),
      );
      session.once('close', () =>
        reject(new ProbeFailure('the server closed the connection: not an HTTP/2 (gRPC) server')),
      );
    });
  })();
  try {
    await Promise.race([reach, deadline]);
  } finally {
    clearTimeout(timer);
    reach.catch(() => undefined);
    session?.destroy();
  }
}
