import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterGuardError } from '../../contracts/errors.js';
import type { ClusterView, InSyncReport } from '../kit/index.js';
import { applyZooKeeperConfig, keepsZooKeeperData, readFolderFiles, serverLine } from './config.js';
import type { ZooKeeperServer } from './server.js';
import {
  describeMembers,
  int64,
  OP,
  parseEnsembleConfig,
  servingModes,
  ustring,
  withWireSession,
  WireSession,
  ZooKeeperReplyError,
  type EnsembleConfig,
} from './wire.js';

/* Membership of a running ensemble: reading and changing its dynamic configuration. */

/** The current dynamic configuration, read through the first member that serves. */
export async function liveConfig(
  zk: ZooKeeperServer,
  candidates: string[],
  timeoutMs: number,
): Promise<{ via: string; config: EnsembleConfig }> {
  const { options, srvrOf } = zk;
  const tried: string[] = [];
  for (const host of candidates) {
    const srvr = await srvrOf(host);
    if (!srvr?.mode || !servingModes.has(srvr.mode)) {
      tried.push(`${host}: ${srvr ? 'not serving' : 'no answer'}`);
      continue;
    }
    try {
      const text = await withWireSession(host, options.clientPort, timeoutMs, async (s) =>
        WireSession.data(
          await s.request(
            OP.getData,
            Buffer.concat([ustring('/zookeeper/config'), Buffer.from([0])]),
            'get /zookeeper/config',
          ),
        ),
      );
      return { via: host, config: parseEnsembleConfig(text) };
    } catch (err) {
      tried.push(`${host}: ${(err as Error).message}`);
    }
  }
  throw new ClusterGuardError(
    'MiddlewareFailure',
    `cannot read the ZooKeeper ensemble's configuration: no member serves (${tried.join('; ')}). ` +
      'Next: start ZooKeeper on a majority of the members, then retry.',
  );
}

/**
 * Sends one reconfig through the first of `candidates` and returns the configuration once it
 * shows the change (`done`). The answer can be lost although the change committed: removing the
 * leader makes it hand over and drop every client connection. So when the answer is missing or
 * ambiguous, the configuration is read again (until the deadline) before anything is reported.
 */
export async function reconfig(
  zk: ZooKeeperServer,
  candidates: string[],
  change: { joining?: string; leaving?: string },
  version: string | undefined,
  done: (config: EnsembleConfig) => boolean,
  deadline: number,
): Promise<EnsembleConfig> {
  const { address, options, logger } = zk;
  const via = candidates[0] ?? address;
  const payload = Buffer.concat([
    ustring(change.joining ?? null),
    ustring(change.leaving ?? null),
    ustring(null),
    int64(version ? BigInt(`0x${version}`) : -1n),
  ]);
  const what = change.joining
    ? `reconfig -add ${change.joining}`
    : `reconfig -remove ${change.leaving}`;
  const remaining = () => Math.max(2_000, deadline - Date.now());
  let failure: Error;
  try {
    const text = await withWireSession(via, options.clientPort, remaining(), async (s) =>
      WireSession.data(await s.request(OP.reconfig, payload, what)),
    );
    const after = parseEnsembleConfig(text);
    logger.info(`${what} committed through ${via}`, { config: text.trim().split('\n') });
    if (done(after)) return after;
    failure = new Error(`the committed configuration lacks the change: ${text.trim()}`);
  } catch (err) {
    failure = err as Error;
    // Refusals that say the change did not and will not happen need no second look.
    if (err instanceof ZooKeeperReplyError && ![-4, -7, -14, -103].includes(err.code)) throw err;
  }
  logger.warn(`${what} through ${via}: ${failure.message}; reading the configuration again`);
  // A refusal (concurrent change) is looked at once; a lost answer until the deadline.
  const lost = !(failure instanceof ZooKeeperReplyError);
  for (;;) {
    await sleep(500);
    try {
      const { config } = await liveConfig(zk, candidates, Math.min(5_000, remaining()));
      if (done(config)) {
        logger.info(`${what} is in effect`, { via });
        return config;
      }
      if (!lost) break;
    } catch {
      // no member serves yet: a new leader is being elected
    }
    if (Date.now() > deadline) break;
  }
  throw failure;
}

/**
 * After a join, this server must be a voter. It is one when the ensemble formed from the
 * generated files; when it joins a running ensemble whose configuration lacks it (a rejoin
 * after decommission, a new node), it syncs as a non-voting follower and is added here.
 */
export async function ensureVoter(
  zk: ZooKeeperServer,
  cluster: ClusterView,
  id: number,
  deadline: number,
): Promise<void> {
  const { address, options, who } = zk;
  const remaining = () => Math.max(5_000, deadline - Date.now());
  const { config } = await liveConfig(zk, [address], remaining());
  const listed = config.members.find((m) => m.id === id);
  if (listed && listed.host !== address) {
    throw new ClusterGuardError(
      'UnsafeMembershipChange',
      `${who}: server id ${id} belongs to ${listed.host} in the running ensemble (${describeMembers(config.members)}); ` +
        `give ${address} an unused id (assignMemberIds with the ensemble's ids) or decommission ${listed.host} first`,
    );
  }
  if (listed?.role === 'participant') return;
  const joining = serverLine(id, address, options);
  try {
    await reconfig(
      zk,
      [address, ...cluster.nodes.filter((n) => n !== address)],
      { joining },
      config.version,
      (c) => c.members.some((m) => m.id === id && m.host === address && m.role === 'participant'),
      deadline,
    );
  } catch (err) {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `${who}: adding server ${id} to the running ensemble (${describeMembers(config.members)}) failed: ${(err as Error).message}. ` +
        'Next: check that a majority of the ensemble serves and that this server synced (its log), then retry the join.',
      { cause: err },
    );
  }
}

/** Every voter of the running ensemble serves, under exactly one leader. */
export async function inSyncNow(zk: ZooKeeperServer): Promise<InSyncReport> {
  const { address, opts, srvrOf } = zk;
  const { config } = await liveConfig(zk, [address], opts('checkServer').timeoutMs * 5);
  const voters = config.members.filter((m) => m.role === 'participant');
  const modes = await Promise.all(
    voters.map(async (v) => ({ host: v.host, mode: (await srvrOf(v.host))?.mode })),
  );
  const leaders = modes.filter((m) => m.mode === 'leader').map((m) => m.host);
  const out = modes.filter((m) => m.mode !== 'leader' && m.mode !== 'follower');
  if (leaders.length === 1 && out.length === 0)
    return {
      inSync: true,
      detail: `zookeeper: ${voters.length} voters serve, leader ${leaders[0] ?? '?'}`,
    };
  return {
    inSync: false,
    detail:
      `zookeeper: ${voters.length} voters, ${leaders.length} leading` +
      (out.length
        ? `; not serving: ${out.map((m) => `${m.host} (${m.mode ?? 'no answer'})`).join(', ')}`
        : ''),
  };
}

export async function joinEnsemble(
  zk: ZooKeeperServer,
  op: 'joinCluster' | 'rejoinCluster',
  cluster: ClusterView,
) {
  const { address, layout, logger, who, opts, stopServer, launch } = zk;
  const deadline = Date.now() + opts(op).timeoutMs;
  const source = layout.clusterConfigFor(address, 'zookeeper');
  let files: Record<string, string>;
  try {
    files = await readFolderFiles(source);
  } catch {
    files = {};
  }
  if (!files['zoo.cfg']) {
    throw new ClusterGuardError(
      'InvalidInput',
      `${who} (${op}): no configuration at ${source}; download this node's archive from the master (${cluster.nodes[0] ?? '?'}) first`,
    );
  }
  await stopServer();
  // A member that comes back with its own data keeps it: when several come back at once (a
  // bootstrap of a formed cluster), emptied members could form a majority and elect a leader
  // with no data, and the member that kept everything would then be truncated to match.
  // ZooKeeper syncs a kept folder from the leader (DIFF, TRUNC or SNAP), as after any restart.
  // Only another ensemble's data or another server id's is wiped (the old guard service wiped
  // always; see docs/design.md, "Data safety").
  const keep = await keepsZooKeeperData(
    layout,
    files.myid ?? '',
    cluster.clusterUuid,
    op === 'rejoinCluster',
  );
  logger.info(`${who}: ${keep ? 'data kept' : 'data wiped'} for ${op}`, { address });
  await applyZooKeeperConfig(layout, files, {
    wipeData: !keep,
    clusterUuid: cluster.clusterUuid,
  });
  await launch(op, true);
  // The identity the server runs with is its myid, whatever the view says.
  await ensureVoter(zk, cluster, Number(files.myid?.trim()), deadline);
}

/**
 * Removes `leaving` from the running ensemble by reconfig, refusing a removal that would leave
 * no strict majority of voters, or that the serving members could not commit.
 */
export async function decommissionCluster(
  zk: ZooKeeperServer,
  cluster: ClusterView,
  leaving: string[],
): Promise<void> {
  const { address, logger, opts, srvrOf, stopServer } = zk;
  const timeoutMs = opts('decommissionCluster').timeoutMs;
  const survivors = [address, ...cluster.nodes].filter(
    (n, i, all) => !leaving.includes(n) && all.indexOf(n) === i,
  );
  const { via, config } = await liveConfig(zk, survivors, timeoutMs);
  const voters = config.members.filter((m) => m.role === 'participant');
  // By address only: an id from memberIds may already belong to another host.
  const removed = config.members.filter((m) => leaving.includes(m.host));
  if (removed.length > 0) {
    const remaining = voters.filter((v) => !removed.some((r) => r.id === v.id));
    if (remaining.length * 2 <= voters.length) {
      throw new ClusterGuardError(
        'UnsafeMembershipChange',
        `refusing to remove ZooKeeper server(s) ${describeMembers(removed)}: ${remaining.length} of the ` +
          `${voters.length} voters (${describeMembers(voters)}) would remain, not a strict majority, so the ensemble ` +
          `could lose its quorum. Next: join replacement nodes first, then remove fewer members at a time ` +
          `(each step must keep more than half of the current voters).`,
      );
    }
    const serving: string[] = [];
    for (const m of remaining) {
      const mode = (await srvrOf(m.host))?.mode;
      if (mode && servingModes.has(mode)) serving.push(m.host);
    }
    if (serving.length * 2 <= remaining.length) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `cannot remove ZooKeeper server(s) ${describeMembers(removed)} yet: only ${serving.length} of the remaining ` +
          `voters (${describeMembers(remaining)}) serve, and the new configuration needs a majority of them. ` +
          'Next: start ZooKeeper on the remaining members, then retry.',
      );
    }
    const leavingIds = removed.map((m) => m.id).join(',');
    try {
      await reconfig(
        zk,
        serving,
        { leaving: leavingIds },
        config.version,
        (c) => !c.members.some((m) => removed.some((r) => r.id === m.id)),
        Date.now() + timeoutMs,
      );
    } catch (err) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `ZooKeeper reconfig -remove ${leavingIds} (${describeMembers(removed)}) through ${serving[0] ?? via} failed: ` +
          `${(err as Error).message}. Next: check that the remaining members serve (checkServer); ` +
          'a concurrent change (BadVersion, ReconfigInProgress) clears by itself — retry.',
        { cause: err },
      );
    }
  } else {
    logger.info(`ZooKeeper ensemble no longer lists ${leaving.join(', ')}`, { via });
  }
  // A removed server keeps answering until stopped, and would confuse clients.
  if (leaving.includes(address)) await stopServer();
}
