import {} from 'node:fs/promises';
import { execa } from 'execa';
import { ClusterGuardError } from '../../contracts/errors.js';
import { type ClusterView } from '../kit/index.js';
import { REPLICATION_FACTOR } from './options.js';
import {
  describeDecommissionRefusal,
  parseDecommissionProgress,
  parseDecommissionRefusal,
  type CockroachNodeStatus,
} from './parse.js';
import type { CockroachServer } from './server.js';

/** Removing members: CockroachDB moves their replicas away first (`node decommission`). */
export function createCockroachDecommission(node: CockroachServer) {
  const { deps, address, logger, bin, opts, env, connection, run, failure, nodeStatus } = node;

  async function decommissionCluster(cluster: ClusterView, leaving: string[]): Promise<void> {
    if (leaving.length === 0) return;
    if (leaving.includes(address)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `decommission runs on a surviving member; ${address} is itself leaving`,
      );
    }
    const both = leaving.filter((l) => cluster.nodes.includes(l));
    if (both.length) {
      throw new ClusterGuardError('InvalidInput', `${both.join(', ')} cannot both stay and leave`);
    }
    const rows = await nodeStatus({ decommission: true });
    const isLeaving = (r: CockroachNodeStatus) => r.host !== undefined && leaving.includes(r.host);
    // An address may have several ids: a node wiped and joined again leaves its old id behind.
    const targets = rows.filter((r) => isLeaving(r) && r.membership !== 'decommissioned');
    const unknown = leaving.filter((l) => !rows.some((r) => r.host === l));
    if (unknown.length) {
      logger.info('cockroach: not cluster members, nothing to decommission', { nodes: unknown });
    }
    if (targets.length === 0) {
      deps.onProgress?.(`cockroach: nothing to decommission among ${leaving.join(', ')}`);
      return;
    }
    const hostsById = new Map(rows.flatMap((r) => (r.host ? [[r.id, r.host] as const] : [])));
    const names = targets.map((t) => `n${t.id} (${t.host})`).join(', ');
    const ids = targets.map((t) => String(t.id));
    const survivors = rows.filter(
      (r) => !isLeaving(r) && r.isLive && (r.membership ?? 'active') === 'active',
    );
    if (survivors.length < REPLICATION_FACTOR) {
      // Ask CockroachDB too: its own words tell the operator which ranges are stuck.
      const dry = await run(
        ['node', 'decommission', ...ids, '--dry-run', '--checks=enabled', ...connection()],
        {
          timeoutMs: opts('checkServer').timeoutMs,
        },
      );
      const refusal = parseDecommissionRefusal(`${String(dry.stdout)}\n${String(dry.stderr)}`);
      throw new ClusterGuardError(
        'UnsafeMembershipChange',
        `refusing to decommission ${names}: only ${survivors.length} live node(s) would remain` +
          `${survivors.length ? ` (${survivors.map((s) => s.host ?? `n${s.id}`).join(', ')})` : ''}, and ` +
          `replication factor ${REPLICATION_FACTOR} needs at least ${REPLICATION_FACTOR} to take over their replicas. ` +
          (refusal ? `${describeDecommissionRefusal(refusal, hostsById)}. ` : '') +
          'Add the new members first, then decommission (docs/design.md).',
      );
    }
    logger.info('cockroach: decommissioning', { nodes: names, survivors: survivors.length });
    deps.onProgress?.(`cockroach: decommissioning ${names}`);
    const subprocess = execa(
      bin,
      ['node', 'decommission', ...ids, '--wait=all', '--checks=enabled', ...connection()],
      {
        stdin: 'ignore',
        timeout: opts('decommissionCluster').timeoutMs,
        cancelSignal: deps.signal,
        reject: false,
        env,
      },
    );
    let stdout = '';
    let reported = '';
    subprocess.stdout?.on('data', (chunk: Buffer | string) => {
      stdout += String(chunk);
      const rowsNow = parseDecommissionProgress(stdout);
      const line = rowsNow
        .map(
          (p) =>
            `n${p.nodeId} (${hostsById.get(p.nodeId) ?? '?'}): ${p.membership}, ${p.replicas} replicas left`,
        )
        .join('; ');
      if (line && line !== reported) {
        reported = line;
        deps.onProgress?.(`cockroach: ${line}`);
      }
    });
    const result = await subprocess;
    if (result.failed) {
      if (result.code === 'ENOENT') {
        throw new ClusterGuardError('MissingBinary', `the CockroachDB binary ${bin} is missing`);
      }
      if (result.isCanceled) deps.signal?.throwIfAborted();
      const refusal = parseDecommissionRefusal(
        `${String(result.stdout)}\n${String(result.stderr)}`,
      );
      if (refusal) {
        throw new ClusterGuardError(
          'UnsafeMembershipChange',
          `refusing to decommission ${names}: ${describeDecommissionRefusal(refusal, hostsById)}. ` +
            'Add members first, then decommission (docs/design.md).',
        );
      }
      throw failure('cockroach node decommission', result);
    }
    const after = await nodeStatus({ decommission: true });
    const pending = after.filter(
      (r) => ids.includes(String(r.id)) && r.membership !== 'decommissioned',
    );
    if (pending.length) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `cockroach node decommission returned, but ${pending.map((p) => `n${p.id} is ${p.membership ?? 'unknown'}`).join(', ')}`,
      );
    }
    logger.info('cockroach: decommissioned', { nodes: names });
    deps.onProgress?.(`cockroach: decommissioned ${names}; stop their servers now`);
  }

  return { decommissionCluster };
}
