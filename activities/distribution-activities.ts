import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { describeTlsError, agentBaseUrl, type ClientTls } from '../src/agent/tls.js';
import { extractZip, zipFolder } from '../src/archive/zip.js';
import type { NodeLayout } from '../src/config/layout.js';
import { isNodeAddress } from '../src/contracts/addresses.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { Logger } from '../src/logger.js';
import { traceHttpRequest } from '../src/observability/http-tracing.js';
import { describeActivity, keepHeartbeating } from './interceptor.js';

export interface DistributionActivityDeps {
  /** This node. */
  address: string;
  layout: NodeLayout;
  /** The cluster token (bearer) for the master's agent API. */
  token: string;
  /** Every agent of a cluster listens on the same port. */
  agentPort: number;
  /** Set when the agents serve HTTPS (`agent.tls`): trust and client certificate. */
  agentTls?: ClientTls;
  logger: Logger;
  /** Backoff of the download loop; tests shorten it. */
  downloadRetry?: { initialMs: number; maxMs: number };
}

export interface PackDistributionInput {
  nodes: string[];
}

export interface DistributionArchive {
  node: string;
  sha256: string;
  bytes: number;
  entries: number;
}

export interface DownloadDistributionInput {
  master: string;
  /** The sha256 packDistribution reported; another archive is taken as "not ready yet". */
  expectedSha256?: string;
}

export interface DownloadDistributionResult extends DistributionArchive {
  /** HTTP requests made, the successful one included. */
  attempts: number;
}

export const defaultDownloadRetry = { initialMs: 1000, maxMs: 10_000 };
/** One download attempt, connect to last byte. */
export const downloadRequestTimeoutMs = 30_000;
/** A master that stays down would otherwise log a line per attempt for as long as it is down. */
const failureLogEveryMs = 10_000;
/** Enough of an error body for its message; the rest is not worth reading. */
const maxErrorBodyBytes = 64 * 1024;

async function isDirectory(folder: string): Promise<boolean> {
  return stat(folder).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function hashing(hash: ReturnType<typeof createHash>, count: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      hash.update(chunk);
      count(chunk.length);
      callback(null, chunk);
    },
  });
}

async function readErrorBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size < maxErrorBodyBytes) chunks.push(chunk);
    size += chunk.length;
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, maxErrorBodyBytes);
  try {
    const body = JSON.parse(text) as { error?: unknown; hint?: unknown };
    if (typeof body.error === 'string') {
      return typeof body.hint === 'string' ? `${body.error} (${body.hint})` : body.error;
    }
  } catch {
    // Not the agent's JSON (a proxy's page, say): the text itself is the best there is.
  }
  return text.trim().slice(0, 300) || '(no message)';
}

export type Attempt =
  | { ok: true; sha256: string; bytes: number }
  | { ok: false; error: string; status?: number; body?: string };

/**
 * One GET from another node's agent (as `peer.self`, with the cluster token) into `temp`. Resolves with what to do next; rejects only
 * when the request was aborted (cancellation or the per-request timeout). With tracing on it is
 * a CLIENT span named by `route`, the path's template (src/observability/http-tracing.ts).
 */
export function fetchToFile(
  url: string,
  temp: string,
  peer: { self: string; token: string; agentTls?: ClientTls },
  signal: AbortSignal,
  route: string,
): Promise<Attempt> {
  return traceHttpRequest({ method: 'GET', url, route }, async (span) => {
    const attempt = await getToFile(url, temp, peer, signal, span.headers);
    if (attempt.ok) span.status(200);
    else {
      if (attempt.status !== undefined) span.status(attempt.status);
      span.fail(attempt.error);
    }
    return attempt;
  });
}

function getToFile(
  url: string,
  temp: string,
  peer: { self: string; token: string; agentTls?: ClientTls },
  signal: AbortSignal,
  traceHeaders: Record<string, string>,
): Promise<Attempt> {
  return new Promise<Attempt>((resolve, reject) => {
    const options = {
      method: 'GET',
      // The master's agent takes the connection's source address as the node's identity
      // (it serves each node only its own archive), so the socket must be bound to ours.
      localAddress: peer.self,
      headers: {
        authorization: `Bearer ${peer.token}`,
        accept: 'application/zip',
        ...traceHeaders,
      },
      // A fresh connection per attempt: nothing pooled outlives the activity.
      agent: false,
      signal,
    } as const;
    const tls = peer.agentTls;
    const req = tls
      ? https.request(url, {
          ...options,
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
        })
      : http.request(url, options);
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) reject(err);
      else if (err.code === 'EADDRNOTAVAIL') {
        resolve({
          ok: false,
          error: `this node's address ${peer.self} is not on this machine (EADDRNOTAVAIL); check node.address in its config`,
        });
      } else {
        resolve({
          ok: false,
          error: describeTlsError(err, url) ?? `cannot reach ${url}: ${err.message}`,
        });
      }
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        readErrorBody(res).then(
          (body) => resolve({ ok: false, status, body, error: `HTTP ${status}: ${body}` }),
          (err: Error) =>
            signal.aborted
              ? reject(err)
              : resolve({ ok: false, status, error: `HTTP ${status}: ${err.message}` }),
        );
        return;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      pipeline(
        res,
        hashing(hash, (n) => (bytes += n)),
        createWriteStream(temp),
      ).then(
        () => {
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared !== bytes) {
            resolve({
              ok: false,
              error: `the archive was cut short: ${bytes} of ${declared} bytes arrived`,
            });
          } else resolve({ ok: true, sha256: hash.digest('hex'), bytes });
        },
        (err: Error) => {
          if (signal.aborted) reject(err);
          else resolve({ ok: false, error: `the download broke off: ${err.message}` });
        },
      );
    });
    req.end();
  });
}

/** The activities that hand each node its configuration archive from the master. */
export function createDistributionActivities(deps: DistributionActivityDeps) {
  const self = deps.address;
  const retry = deps.downloadRetry ?? defaultDownloadRetry;

  return {
    /**
     * On the master: zips `cluster-config/<node>` into `cluster-distribution/<node>.zip` for
     * every node. Idempotent: it rebuilds every archive from the folders as they are, and the
     * same content gives the same bytes (fixed entry order and timestamps).
     */
    async packDistribution(input: PackDistributionInput): Promise<{
      archives: DistributionArchive[];
    }> {
      const ctx = Context.current();
      describeActivity(`packDistribution on node ${self}`);
      const archives: DistributionArchive[] = [];
      for (const node of [...new Set(input.nodes)]) {
        const folder = deps.layout.clusterConfigFor(node);
        const missing = new ClusterGuardError(
          'InvalidInput',
          `no configuration generated for ${node} in ${folder}: run createCluster/prepareClusterConfig on the master first`,
        );
        if (!(await isDirectory(folder))) throw missing;
        const target = deps.layout.distributionFileFor(node);
        const zipped = await zipFolder(folder, target);
        if (zipped.entries === 0) {
          // An empty archive would let the node "join" with no configuration at all.
          await rm(target, { force: true });
          throw missing;
        }
        if (zipped.skipped.length > 0) {
          deps.logger.warn('configuration entries that are not regular files were left out', {
            node,
            skipped: zipped.skipped,
          });
        }
        archives.push({
          node,
          sha256: zipped.sha256,
          bytes: zipped.bytes,
          entries: zipped.entries,
        });
        ctx.heartbeat({ packed: node });
      }
      deps.logger.info('configuration archives packed', {
        nodes: archives.map((a) => a.node),
      });
      return { archives };
    },

    /**
     * On a joining node: downloads its archive from the master's agent, retrying until it is
     * there, and unpacks it into `cluster-config/<self>`. Idempotent: a repeat downloads and
     * unpacks the same archive again, replacing the folder as a whole.
     */
    async downloadDistribution(
      input: DownloadDistributionInput,
    ): Promise<DownloadDistributionResult> {
      const ctx = Context.current();
      describeActivity(`downloadDistribution on node ${self}`);
      let attempt = 0;
      let lastError: string | undefined;
      const details = () => ({ waitingFor: 'master', master: input.master, attempt, lastError });
      // Beats through the request and the backoff alike: a request alone may take 30 s.
      const signal = keepHeartbeating(details);
      let lastLoggedAt = -Infinity;
      let unlogged = 0;
      if (!isNodeAddress(input.master)) {
        throw new ClusterGuardError('InvalidInput', `"${input.master}" is not a node address`);
      }
      const expected = input.expectedSha256?.toLowerCase();
      if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
        throw new ClusterGuardError(
          'InvalidInput',
          `expectedSha256 "${input.expectedSha256}" is not a sha256 in hex`,
        );
      }
      const url =
        `${agentBaseUrl(input.master, deps.agentPort, deps.agentTls)}/v1/cluster/config/actions/download` +
        `?node=${encodeURIComponent(self)}`;
      const folder = await deps.layout.ensure(deps.layout.clusterDistributionFolder);

      for (;;) {
        attempt += 1;
        ctx.heartbeat(details());
        const temp = path.join(folder, `.download-${self}.${randomUUID()}.zip.tmp`);
        const timeout = new AbortController();
        const onCancel = () => timeout.abort(signal.reason);
        signal.addEventListener('abort', onCancel, { once: true });
        const timer = setTimeout(() => timeout.abort(), downloadRequestTimeoutMs);
        let result: Attempt;
        try {
          if (signal.aborted) throw signal.reason;
          result = await fetchToFile(
            url,
            temp,
            { self, ...deps },
            timeout.signal,
            '/v1/cluster/config/actions/download',
          );
        } catch (err) {
          await rm(temp, { force: true });
          if (signal.aborted) throw signal.reason;
          result = {
            ok: false,
            error: `no complete answer within ${downloadRequestTimeoutMs / 1000} s (${(err as Error).message})`,
          };
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', onCancel);
        }

        if (result.ok && expected !== undefined && result.sha256 !== expected) {
          result = {
            ok: false,
            error:
              `the master served an archive with sha256 ${result.sha256}, not the expected ` +
              `${expected}; it may still be rewriting it`,
          };
        }
        if (result.ok) {
          try {
            const target = deps.layout.clusterConfigFor(self);
            const extracted = await extractZip(temp, target);
            deps.logger.info('configuration archive downloaded and unpacked', {
              master: input.master,
              sha256: result.sha256,
              bytes: result.bytes,
              entries: extracted.entries,
              attempts: attempt,
              into: target,
            });
            return {
              node: self,
              sha256: result.sha256,
              bytes: result.bytes,
              entries: extracted.entries,
              attempts: attempt,
            };
          } finally {
            await rm(temp, { force: true });
          }
        }
        await rm(temp, { force: true });

        if (result.status === 401 || result.status === 403) {
          throw new ClusterGuardError(
            'Unauthorized',
            `the agent of master ${input.master} refused to serve the configuration of ` +
              `node ${self} (HTTP ${result.status}: ${result.body ?? ''}). Check that the ` +
              'cluster token file (agent.tokenFile) holds the same token on both nodes, and ' +
              `that this node's address ${self} (node.address) is the one the master's ` +
              'cluster lists for it: the master serves each node only from its own address.',
          );
        }
        if (result.status === 400) {
          throw new ClusterGuardError(
            'InvalidInput',
            `the agent of master ${input.master} refused the request: ${result.body ?? ''}`,
          );
        }

        lastError = result.error;
        const now = Date.now();
        if (now - lastLoggedAt >= failureLogEveryMs) {
          deps.logger.warn('configuration download failed; retrying', {
            master: input.master,
            attempt,
            error: lastError,
            ...(unlogged > 0 ? { failuresSinceLastLine: unlogged } : {}),
          });
          lastLoggedAt = now;
          unlogged = 0;
        } else unlogged += 1;
        ctx.heartbeat(details());
        // Rejects with CancelledFailure when the step is cancelled.
        await ctx.sleep(Math.min(retry.maxMs, retry.initialMs * 2 ** (attempt - 1)));
      }
    },
  };
}
