import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isNodeAddress } from '../../contracts/addresses.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import { replaceFolder, wipeFolder, type ClusterView } from '../kit/index.js';
import { kafkaConfigFiles } from './config.js';
import { planReplicaMoves } from './placement.js';
import { quorumSize } from './quorum.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';
import type { KafkaLifecycle } from './lifecycle.js';
import type { KafkaRebalance } from './rebalance.js';

/** Join, rejoin and decommission of this node. */
export function createKafkaMembership(
  k: KafkaServer & KafkaClients & KafkaLifecycle & KafkaRebalance,
) {
  const {
    address,
    layout,
    logger,
    confFolder,
    dataFolder,
    who,
    fail,
    deadlineFor,
    readManifest,
    readMeta,
    tool,
    reason,
    controllersOf,
    describeQuorumVia,
    brokersOf,
    withAdmin,
    allTopics,
    start,
    stop,
    becomeVoter,
    removeVoter,
    applyMoves,
    ensureTopics,
  } = k;

  async function join(op: 'joinCluster' | 'rejoinCluster'): Promise<void> {
    const deadline = deadlineFor(op);
    const source = layout.clusterConfigFor(address, 'kafka');
    try {
      await readFile(path.join(source, kafkaConfigFiles.manifest));
    } catch {
      throw fail(
        'InvalidConfig',
        `${who} cannot ${op === 'joinCluster' ? 'join' : 'rejoin'}: no configuration at ${source}; download the master's archive (cluster-distribution/${address}.zip) first`,
      );
    }
    await stop();
    await replaceFolder(source, confFolder);
    const m = await readManifest();
    // A node that is still formatted for this cluster as the same node id keeps everything: its
    // partition logs, its KRaft identity (meta.properties, directory id) and its metadata log.
    // Its replicas may still be in a partition's in-sync set (after a whole-cluster stop the last
    // broker to stop stays its only member), and the controller would elect an emptied one
    // leader, from offset 0, and have every other replica truncate to match: acknowledged
    // messages gone. Kept logs are safe: a replica behind catches up from the leader, one that
    // diverged is truncated by the leader-epoch protocol. (The old guard service emptied the
    // messages here; see docs/design.md, "Data safety".) Only a node formatted for another
    // cluster or node id starts empty, and a new node id holds no replica that could lead.
    const meta = await readMeta();
    if (meta?.['cluster.id'] === m.clusterId && meta['node.id'] === String(m.nodeId)) {
      logger.info('kafka data kept: this node is formatted for this cluster as the same node', {
        address,
        nodeId: m.nodeId,
      });
    } else {
      if (meta)
        logger.info('kafka data wiped: formatted for another cluster or node id', { address });
      await wipeFolder(dataFolder);
    }
    await start(op, 'observer');
    await becomeVoter(m, deadline);
    await ensureTopics(m, deadline);
  }

  async function decommission(cluster: ClusterView, leavingInput: string[]): Promise<void> {
    const deadline = deadlineFor('decommissionCluster');
    const leaving = [...new Set(leavingInput)];
    if (leaving.length === 0) return;
    for (const l of leaving)
      if (!isNodeAddress(l)) throw fail('InvalidInput', `"${l}" is not a node address`);
    const m = await readManifest();
    const survivors = cluster.nodes.filter((n) => !leaving.includes(n));
    if (survivors.length === 0)
      throw new ClusterGuardError(
        'UnsafeMembershipChange',
        `cannot decommission kafka on ${leaving.join(', ')}: no member would remain. Nothing was changed`,
      );
    const controllers = controllersOf(survivors, m);

    await withAdmin(brokersOf(survivors, m), async (admin) => {
      const brokers = (await admin.describeCluster()).brokers;
      const quorum = await describeQuorumVia(controllers);
      const idOf = (addr: string): number | undefined =>
        brokers.find((b) => b.host === addr)?.nodeId ??
        quorum.voters.find((v) => v.host === addr)?.id ??
        cluster.memberIds[addr] ??
        m.memberIds[addr];
      const leavingIds = new Map<number, string>();
      for (const l of leaving) {
        const id = idOf(l);
        if (id !== undefined) leavingIds.set(id, l);
        else
          logger.warn('kafka: leaving node is unknown to the cluster; nothing to move', {
            node: l,
          });
      }
      const removeSet = new Set(leavingIds.keys());
      const liveIds = brokers.map((b) => b.nodeId);
      const remaining = liveIds.filter((id) => !removeSet.has(id));
      const names = (ids: number[]) =>
        ids.map((id) => brokers.find((b) => b.nodeId === id)?.host ?? `node ${id}`).join(', ');
      const leavingText =
        [...leavingIds].map(([id, a]) => `${a} (kafka node ${id})`).join(', ') ||
        leaving.join(', ');

      // Pre-checks first, so that a refusal changes nothing.
      const topics = await allTopics(admin);
      const blocking = topics
        .map((t) => ({
          name: t.name,
          rf: Math.max(0, ...t.partitions.map((p) => p.replicas.length)),
        }))
        .filter((t) => t.rf > remaining.length);
      // Brokers of surviving members that are not registered right now (restarting, or fenced
      // after a missed heartbeat) will be back: a shortfall they cause is worth a retry, and the
      // advice to add a node would be wrong.
      const survivorsDown = survivors.filter((n) => {
        const id = idOf(n);
        return id === undefined || !liveIds.includes(id);
      });
      if (blocking.length > 0 && survivorsDown.length > 0) {
        const enough = blocking.every((t) => t.rf <= remaining.length + survivorsDown.length);
        if (enough)
          throw fail(
            'MiddlewareFailure',
            `cannot decommission kafka on ${leavingText} yet: the broker(s) of surviving member(s) ` +
              `${survivorsDown.join(', ')} are not running right now, so only ${remaining.length} ` +
              `would serve topics that need more replicas. Nothing was changed. The step is retried; ` +
              `if it stays parked, start kafka on those nodes, then retry`,
          );
      }
      if (blocking.length > 0) {
        const list = blocking.map((t) => `"${t.name}" (replication factor ${t.rf})`).join(', ');
        throw new ClusterGuardError(
          'UnsafeMembershipChange',
          `cannot decommission kafka on ${leavingText}: only ${remaining.length} running broker(s) would remain ` +
            `[${names(remaining)}], fewer than the replicas of topic ${list}. Nothing was changed. ` +
            `Add a node first (join it, then decommission), or lower those topics' replication factor to at most ` +
            `${remaining.length} with a partition reassignment, then decommission again`,
        );
      }
      // A survivor that is down keeps its partitions under-replicated: the wait below could
      // never end.
      const down = new Map<number, string[]>();
      for (const t of topics)
        for (const p of t.partitions)
          for (const r of p.replicas)
            if (!liveIds.includes(r) && !removeSet.has(r))
              down.set(r, [...(down.get(r) ?? []), `${t.name}-${p.partitionId}`]);
      if (down.size > 0)
        throw fail(
          'MiddlewareFailure',
          `cannot decommission kafka on ${leavingText} now: broker(s) ${[...down.keys()].join(', ')} hold replicas ` +
            `(${[...down.values()].flat().slice(0, 5).join(', ')}${[...down.values()].flat().length > 5 ? ', …' : ''}) but are not running, so the cluster cannot get back ` +
            `in sync. Nothing was changed. Start kafka on those nodes (or decommission them too), then retry`,
        );
      const leavingVoters = quorum.voters.filter((v) => removeSet.has(v.id));
      let voters = [...quorum.voters];
      for (const v of leavingVoters) {
        const after = voters.filter((x) => x !== v);
        const liveAfter = after.filter((x) => liveIds.includes(x.id)).length;
        if (after.length === 0 || liveAfter < quorumSize(after.length))
          throw new ClusterGuardError(
            'UnsafeMembershipChange',
            `cannot decommission kafka on ${leavingText}: removing controller ${v.id} would leave ` +
              `${after.length} voter(s) of which only ${liveAfter} are running, no majority. Nothing was changed. ` +
              `Start the stopped members (or add a node) first, then decommission again`,
          );
        voters = after;
      }

      // Replicas move off the leaving brokers before anything stops.
      const moves = planReplicaMoves(topics, liveIds, { remove: [...removeSet] });
      await applyMoves(admin, moves, removeSet, deadline, `moving replicas off ${leavingText}`);

      for (const v of leavingVoters) {
        const current = await describeQuorumVia(controllers);
        const entry = current.voters.find((x) => x.id === v.id && x.directoryId === v.directoryId);
        if (entry) await removeVoter(controllers, entry);
      }

      // This node's broker is known to be down once stop() returns; the others' metadata learns
      // it a moment later, so it is not asked.
      if (leaving.includes(address)) await stop();
      const stillRunning = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
      for (const [id, addr] of leavingIds) {
        if (addr !== address && stillRunning.includes(id)) {
          // An unregistered broker that keeps running can neither re-register nor shut down
          // cleanly (STALE_BROKER_EPOCH); it stays registered until it is stopped.
          logger.warn(
            `kafka broker ${id} on ${addr} holds no replicas and is no controller, but still runs: stop it and run decommissionCluster again to unregister it`,
          );
          continue;
        }
        const r = await tool('org.apache.kafka.tools.ClusterTool', [
          'unregister',
          '--bootstrap-server',
          brokersOf(survivors, m).join(','),
          '--id',
          String(id),
        ]);
        if (
          !r.ok &&
          !/not registered|BrokerIdNotRegistered|BROKER_ID_NOT_REGISTERED/i.test(r.output)
        )
          throw fail(
            'MiddlewareFailure',
            `${who}: replicas were moved off ${addr} and it left the quorum, but unregistering kafka broker ${id} failed: ${reason(r.output)}. Run decommissionCluster again`,
          );
        logger.info('kafka broker unregistered', { broker: id, node: addr });
      }
    });
  }

  return {
    join,
    decommission,
  };
}

export type KafkaMembership = ReturnType<typeof createKafkaMembership>;
