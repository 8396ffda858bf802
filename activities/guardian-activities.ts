import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import type { ErrorType } from '../src/contracts/errors.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { NodeBundles } from '../src/contracts/bundle-view.js';
import {
  desiredFromController,
  type ControllerMembership,
  type NodeHealthReport,
  type ServerHealthReport,
} from '../src/contracts/guardian.js';
import type { Logger } from '../src/logger.js';
import { describeActivity, keepHeartbeating } from './interceptor.js';

/** A ControllerCluster is a few hundred bytes; anything far larger is not one. */
const maxControllerBodyBytes = 1024 * 1024;

export interface FetchControllerInput {
  url: string;
  timeoutSeconds: number;
}

export interface ControllerAnswer extends ControllerMembership {
  fetchedAt: string;
}

const retryable = (message: string, type: ErrorType) => ApplicationFailure.retryable(message, type);

async function readBounded(response: Response, limit: number): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new ClusterGuardError('InvalidInput', `the answer is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Runs on the orchestrator's task queue: the controller's API is a cluster-level service, not a
 * node's (DESIGN.md puts the controller poll beside the workflows), and the master is exactly
 * the node a membership change may replace.
 */
export function createGuardianActivities(deps: { logger: Logger; fetch?: typeof fetch }) {
  const doFetch = deps.fetch ?? fetch;
  return {
    /** One poll of the controller's cluster endpoint, turned into the desired membership. */
    async fetchControllerCluster(input: FetchControllerInput): Promise<ControllerAnswer> {
      const where = `polling the controller at ${input.url}`;
      describeActivity(where);
      const signal = AbortSignal.any([
        AbortSignal.timeout(input.timeoutSeconds * 1000),
        Context.current().cancellationSignal,
      ]);
      let body: string;
      try {
        const response = await doFetch(input.url, {
          signal,
          headers: { accept: 'application/json' },
          redirect: 'error',
        });
        if (!response.ok) {
          throw retryable(
            `${where}: HTTP ${response.status} ${response.statusText}. The desired membership is ` +
              'unknown until it answers; nothing is changed meanwhile',
            'ControllerUnavailable',
          );
        }
        body = await readBounded(response, maxControllerBodyBytes);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (err instanceof ClusterGuardError) throw err;
        const e = err as Error;
        const reason =
          e.name === 'TimeoutError'
            ? `no answer within ${input.timeoutSeconds} s`
            : `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}`;
        throw retryable(
          `${where}: ${reason}. The desired membership is unknown until it answers; nothing is ` +
            'changed meanwhile',
          'ControllerUnavailable',
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw ApplicationFailure.nonRetryable(
          `${where}: the answer is not JSON (${JSON.stringify(body.slice(0, 80))}…)`,
          'InvalidInput',
        );
      }
      const membership = desiredFromController(json);
      deps.logger.debug('controller polled', { url: input.url, nodes: membership.nodes });
      return { ...membership, fetchedAt: new Date().toISOString() };
    },
  };
}

export type GuardianActivities = ReturnType<typeof createGuardianActivities>;

export interface WebappCommands {
  stopCommand?: string[];
  startCommand?: string[];
  timeoutSeconds: number;
}

export interface WebappResult {
  node: string;
  action: 'stop' | 'start';
  outcome: 'done' | 'skipped';
  detail: string;
}

/**
 * Runs on a node's own task queue. The command comes from the agent's local configuration
 * (`webapps.stopCommand` / `webapps.startCommand`), never from the workflow: whoever starts a
 * workflow chooses only stop or start (DESIGN.md "Trust boundaries").
 */
export function createWebappActivities(deps: {
  address: string;
  webapps: WebappCommands;
  logger: Logger;
}) {
  return {
    async controlWebapps(input: { action: 'stop' | 'start' }): Promise<WebappResult> {
      const { action } = input;
      const node = deps.address;
      if (action !== 'stop' && action !== 'start') {
        throw ApplicationFailure.nonRetryable(
          `unknown webapp action ${String(action)}`,
          'InvalidInput',
        );
      }
      const command = action === 'stop' ? deps.webapps.stopCommand : deps.webapps.startCommand;
      const key = `webapps.${action}Command`;
      if (!command) {
        deps.logger.info(
          `no ${key} configured: webapps not ${action === 'stop' ? 'stopped' : 'started'}`,
        );
        return {
          node,
          action,
          outcome: 'skipped',
          detail: `${key} is not configured on ${node}: skipped`,
        };
      }
      const [file = '', ...args] = command;
      const cancelSignal = keepHeartbeating(() => ({ action }));
      const result = await execa(file, args, {
        timeout: deps.webapps.timeoutSeconds * 1000,
        cancelSignal,
        reject: false,
        all: true,
        stdin: 'ignore',
      });
      const output = (result.all ?? '').trim().split('\n').slice(-5).join('\n');
      if (result.failed) {
        if ((result as { code?: string }).code === 'ENOENT') {
          throw ApplicationFailure.nonRetryable(
            `${key} on ${node}: ${file} does not exist. Fix ${key} in the agent's configuration`,
            'MissingBinary',
          );
        }
        if (result.isCanceled)
          throw ApplicationFailure.retryable(`${key} on ${node} was cancelled`);
        throw ApplicationFailure.retryable(
          `${key} on ${node} failed (${result.timedOut ? `no exit within ${deps.webapps.timeoutSeconds} s` : `exit code ${result.exitCode ?? '?'}`}): ${output || 'no output'}. ` +
            'Check the webapps on that node; the guardian tries again',
          'WebappCommandFailed',
        );
      }
      deps.logger.info(`webapps ${action === 'stop' ? 'stopped' : 'started'}`, { command: file });
      return { node, action, outcome: 'done', detail: output || `${file} exited 0` };
    },
  };
}

export type WebappActivities = ReturnType<typeof createWebappActivities>;

export interface NodeHealthDeps {
  address: string;
  /** The agent's supervisor (src/agent/supervisor.ts); absent when it is disabled. */
  supervisor?: () => { member: boolean; servers: ServerHealthReport[] };
  /** This node's bundles (framework listing); absent without bundles. */
  listBundles?: () => Promise<NodeBundles>;
}

/** Whether the framework runs each desired bundle, at its version, ACTIVE. */
function bundlesAsDesired(
  mine: NodeBundles,
  desired: { symbolicName: string; version: string }[],
): NodeHealthReport['bundles'] {
  const fw = mine.framework;
  if (!fw) return undefined;
  if ('error' in fw) return { ok: false, detail: `the framework does not answer: ${fw.error}` };
  const wrong = desired.flatMap((d) => {
    const b = fw.bundles.find((x) => x.symbolicName === d.symbolicName);
    if (!b) return [`${d.symbolicName} ${d.version} missing`];
    if (b.version !== d.version) return [`${d.symbolicName} runs ${b.version}, not ${d.version}`];
    return b.state === 'ACTIVE' ? [] : [`${d.symbolicName} ${d.version} is ${b.state}`];
  });
  return wrong.length === 0
    ? { ok: true, detail: `${desired.length} desired bundle(s) active` }
    : { ok: false, detail: wrong.join('; ') };
}

/** Node-side: what the guardian reads of a node's health (docs/guardian.md, "Health"). */
export function createNodeHealthActivities(deps: NodeHealthDeps) {
  return {
    async nodeHealth(input: {
      desiredBundles?: { symbolicName: string; version: string }[];
    }): Promise<NodeHealthReport> {
      describeActivity(`nodeHealth on node ${deps.address}`);
      const supervised = deps.supervisor?.() ?? { member: false, servers: [] };
      const desired = input.desiredBundles ?? [];
      let bundles: NodeHealthReport['bundles'];
      if (desired.length > 0 && deps.listBundles) {
        try {
          bundles = bundlesAsDesired(await deps.listBundles(), desired);
        } catch (err) {
          bundles = { ok: false, detail: `cannot list bundles: ${(err as Error).message}` };
        }
      }
      return {
        node: deps.address,
        member: supervised.member,
        servers: supervised.servers.map(({ server, state, detail, restarts }) => ({
          server,
          state,
          detail,
          restarts,
        })),
        ...(bundles ? { bundles } : {}),
      };
    },
  };
}

export type NodeHealthActivities = ReturnType<typeof createNodeHealthActivities>;
