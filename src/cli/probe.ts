import { lookup } from 'node:dns/promises';
import http2 from 'node:http2';
import { isIP } from 'node:net';
import type { SecureClientSessionOptions } from 'node:http2';
import { readFile } from 'node:fs/promises';
import type { ConnectOptions } from '../client/connect.js';
import { CliExit, exitCodes } from './common.js';
import type { ResolvedConnection } from './settings.js';

/**
 * Before the Temporal client connects (it would retry for its whole deadline and then say only
 * "Failed to connect before the deadline"), the CLI reaches the frontend itself once: the host
 * name, TCP, TLS and an HTTP/2 session, each within the connect timeout. A failure names its
 * cause: unknown host, connection refused, no answer, a TLS error, not an HTTP/2 server
 * (docs/cli.md, "Exit codes").
 */

export class ProbeFailure extends Error {}

/** Exit 3 with the cause, where the settings came from and what to check. */
export function cannotConnect(conn: ResolvedConnection, cause: string): CliExit {
  const from = conn.profile ? `, profile "${conn.profile.name}" of ${conn.profile.file}` : '';
  return new CliExit(
    exitCodes.cannotConnect,
    `cannot connect to Temporal at ${conn.connect.address} (namespace ` +
      `${conn.connect.namespace ?? 'default'}${from}): ${cause}. Check ` +
      `--address or TEMPORAL_ADDRESS${conn.profile ? ', the profile' : ''}, TLS and API key ` +
      'settings, and that the server runs.',
    'CannotConnect',
  );
}

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
    // OpenSSL's "…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…": the reason.
    const reason = /routines:[^:]*:([^:]+):/.exec(err.message)?.[1] ?? err.message;
    return (
      `TLS error: ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}` +
      (plain ? '; the server does not speak TLS: try --no-tls' : '')
    );
  }
  if (code.startsWith('ERR_HTTP2') || /protocol error/i.test(err.message)) {
    return `not an HTTP/2 (gRPC) server: ${err.message}`;
  }
  return err.message || code;
}

type Tls = Exclude<ConnectOptions['tls'], boolean | undefined>;

async function pem(data: string | undefined, file: string | undefined, what: string) {
  if (data !== undefined) return Buffer.from(data);
  if (!file) return undefined;
  return readFile(file).catch((err: Error) => {
    throw new ProbeFailure(`cannot read the TLS ${what} ${file}: ${err.message}`);
  });
}

/** Node's TLS options for the material the client will use (files or inline PEM). */
async function secureOptions(t: Tls, host: string): Promise<SecureClientSessionOptions> {
  const [ca, cert, key] = await Promise.all([
    pem(t.caData, t.ca, 'CA certificate'),
    pem(t.certData, t.cert, 'client certificate'),
    pem(t.keyData, t.key, 'client key'),
  ]);
  return {
    // An IP address is no server name (RFC 6066): then the certificate's IP SAN is checked.
    ...(t.serverName || !isIP(host) ? { servername: t.serverName ?? host } : {}),
    ALPNProtocols: ['h2'],
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
  };
}

/**
 * One gRPC call any Temporal frontend answers, GetSystemInfo, by hand (an empty message: a
 * 5-byte frame). A gRPC answer other than UNIMPLEMENTED, even a refusal of the credentials, is
 * a Temporal frontend; anything else is not.
 */
function askSystemInfo(session: http2.ClientHttp2Session, options: ConnectOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const notTemporal = (what: string) =>
      reject(new ProbeFailure(`it answers HTTP/2 but is not a Temporal frontend (${what})`));
    const req = session.request({
      ':method': 'POST',
      ':path': '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      ...options.grpcMeta,
    });
    const verdict = (status: unknown) => {
      if (status === '12') notTemporal('no WorkflowService: grpc-status 12 UNIMPLEMENTED');
      else resolve();
    };
    req.once('response', (headers) => {
      const type = String(headers['content-type'] ?? '');
      if (headers[':status'] !== 200 || !type.startsWith('application/grpc')) {
        notTemporal(`HTTP ${String(headers[':status'])}${type ? `, ${type}` : ''}`);
      } else if (headers['grpc-status'] !== undefined) verdict(headers['grpc-status']);
    });
    req.once('trailers', (trailers: http2.IncomingHttpHeaders) => verdict(trailers['grpc-status']));
    req.once('error', (err: Error) => reject(new ProbeFailure(err.message)));
    req.on('data', () => undefined);
    req.once('end', () => resolve());
    req.end(Buffer.alloc(5));
  });
}

/**
 * Reaches `address` as the client would (TLS as configured), within `timeoutMs`; resolves once
 * the server has sent its HTTP/2 settings, else throws a `ProbeFailure` naming the cause.
 */
export async function probeFrontend(options: ConnectOptions, timeoutMs: number): Promise<void> {
  const { host, port } = hostAndPort(options.address ?? '127.0.0.1:7233');
  // As the client decides: TLS when asked for, or when an API key is given without a setting.
  const secure = options.tls === undefined ? options.apiKey !== undefined : options.tls !== false;
  const tls =
    secure && typeof options.tls === 'object'
      ? await secureOptions(options.tls, host)
      : await secureOptions({}, host);
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
      session = http2.connect(authority, secure ? tls : {});
      session.once('remoteSettings', () => {
        if (session) askSystemInfo(session, options).then(resolve, reject);
      });
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
