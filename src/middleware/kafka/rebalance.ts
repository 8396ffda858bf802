import type { Admin } from 'kafkajs';
import type { InSyncReport } from '../kit/index.js';
import type { KafkaNodeManifest } from './config.js';
import type { ReplicaMove } from './placement.js';
import { planReplicaMoves } from './placement.js';
import type { KafkaVoter } from './quorum.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';
import type { KafkaLifecycle } from './lifecycle.js';

/** Controller quorum membership and replica movement. */
export function createKafkaRebalance(k: KafkaServer & KafkaClients & KafkaLifecycle) {
  async function becomeVoter(m: KafkaNodeManifest, deadline: number): Promise<void> {
    const directoryId = (await k.readMeta())?.['directory.id'];
    if (!directoryId)
      throw k.fail(
        'MiddlewareFailure',
        `${k.who}: no directory.id in ${k.dataFolder}/meta.properties`,
      );
    const controllers = k.controllersOf(m.nodes, m);
    let last = '';
    for (;;) {
      k.deps.signal?.throwIfAborted();
      try {
        const q = await k.describeQuorumVia(controllers);
        const mine = q.voters.find((v) => v.id === m.nodeId);
        if (mine?.directoryId === directoryId) return;
        if (mine) {
          // Our own earlier incarnation (its data was wiped): it can never vote again, and a
          // node id may be a voter only once.
          k.progress(`${k.who}: removing its stale voter entry (directory ${mine.directoryId})`);
          await removeVoter(controllers, mine);
          continue;
        }
        const r = await k.tool(
          'org.apache.kafka.tools.MetadataQuorumCommand',
          [
            '--bootstrap-controller',
            controllers,
            '--command-config',
            k.runtimeServer,
            'add-controller',
          ],
          60_000,
        );
        if (r.ok) {
          k.logger.info('kafka controller added to the quorum', {
            address: k.address,
            nodeId: m.nodeId,
            directoryId,
          });
          return;
        }
        last = k.reason(r.output);
      } catch (err) {
        if (k.deps.signal?.aborted) throw err;
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw k.fail(
          'MiddlewareFailure',
          `${k.who} runs as an observer but could not become a controller voter: ${last}. ` +
            `Check the quorum (kafka-metadata-quorum --bootstrap-controller ${controllers} describe --status) and run joinCluster again`,
        );
      // Only one voter change at a time: parallel joins take turns.
      k.progress(`${k.who}: waiting to join the controller quorum (${last})`);
      await k.pause(2000);
    }
  }

  async function removeVoter(controllers: string, voter: KafkaVoter): Promise<void> {
    const r = await k.tool(
      'org.apache.kafka.tools.MetadataQuorumCommand',
      [
        '--bootstrap-controller',
        controllers,
        'remove-controller',
        '--controller-id',
        String(voter.id),
        '--controller-directory-id',
        voter.directoryId,
      ],
      60_000,
    );
    if (!r.ok)
      throw k.fail(
        'MiddlewareFailure',
        `${k.who}: removing kafka controller ${voter.id} (directory ${voter.directoryId}) from the quorum failed: ${k.reason(r.output)}`,
      );
    k.logger.info('kafka controller removed from the quorum', { voter: voter.id });
  }

  async function applyMoves(
    admin: Admin,
    moves: ReplicaMove[],
    remove: ReadonlySet<number>,
    deadline: number,
    what: string,
  ): Promise<void> {
    if (moves.length > 0) {
      const byTopic = new Map<string, { partition: number; replicas: number[] }[]>();
      for (const mv of moves) {
        const list = byTopic.get(mv.topic) ?? [];
        list.push({ partition: mv.partition, replicas: mv.to });
        byTopic.set(mv.topic, list);
      }
      await admin.alterPartitionReassignments({
        topics: [...byTopic].map(([topic, partitionAssignment]) => ({
          topic,
          partitionAssignment,
        })),
        timeout: 30_000,
      });
      k.logger.info(`kafka reassignment submitted: ${what}`, { partitions: moves.length });
    }
    for (;;) {
      k.deps.signal?.throwIfAborted();
      const ongoing = await admin.listPartitionReassignments({ timeout: 15_000 });
      const running = ongoing.topics.flatMap((t) =>
        t.partitions.map((p) => `${t.topic}-${p.partitionIndex}`),
      );
      const lagging: string[] = [];
      for (const t of await k.allTopics(admin))
        for (const p of t.partitions)
          if (p.replicas.some((r) => remove.has(r)) || p.isr.length < p.replicas.length)
            lagging.push(
              `${t.name}-${p.partitionId} (replicas [${p.replicas.join(',')}], in sync [${p.isr.join(',')}])`,
            );
      if (running.length === 0 && lagging.length === 0) return;
      if (Date.now() > deadline)
        throw k.fail(
          'MiddlewareFailure',
          `${k.who}: ${what} did not finish in time: ${running.length} reassignments still running` +
            `${running.length ? ` (${running.slice(0, 5).join(', ')})` : ''}, ${lagging.length} partitions not fully in sync` +
            `${lagging.length ? ` (${lagging.slice(0, 5).join('; ')})` : ''}. Nothing is lost; the reassignment continues in Kafka. ` +
            `Check that every remaining broker is up, then run the operation again (it resumes)`,
        );
      k.progress(`${what}: ${running.length} partitions moving, ${lagging.length} not in sync`);
      await k.pause(1000);
    }
  }

  /** Creates missing configured topics and raises topics below the cluster's replication. */
  async function ensureTopics(m: KafkaNodeManifest, deadline: number): Promise<void> {
    await k.withAdmin(k.brokersOf(m.nodes, m), async (admin) => {
      const live = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
      if (live.length < m.replicationFactor) {
        k.logger.info('kafka topics wait for more brokers', {
          live: live.length,
          need: m.replicationFactor,
        });
        return;
      }
      const existing = new Set(await admin.listTopics());
      const missing = m.topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: false,
          timeout: 30_000,
          topics: missing.map((t) => ({
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor: m.replicationFactor,
          })),
        });
        await k.waitForLeaders(
          admin,
          missing.map((t) => t.name),
          deadline,
        );
        k.logger.info('kafka topics created', {
          topics: missing.map((t) => t.name),
          replicationFactor: m.replicationFactor,
        });
      }
      const moves = planReplicaMoves(await k.allTopics(admin), live, {
        targetReplicas: m.replicationFactor,
      });
      if (moves.length > 0)
        await applyMoves(
          admin,
          moves,
          new Set(),
          deadline,
          `raising topics to ${m.replicationFactor} replicas`,
        );
    });
  }

  /**
   * Every partition of every topic (internal ones included) as the cluster reports it now: in
   * sync when each has a leader and all its replicas in its in-sync set, and no reassignment
   * runs. A membership change is not done before this holds.
   */
  async function inSyncNow(): Promise<InSyncReport> {
    const m = await k.readManifest();
    return k.withAdmin(k.brokersOf(m.nodes, m), async (admin) => {
      const topics = await k.allTopics(admin);
      const moving = (await admin.listPartitionReassignments({ timeout: 10_000 })).topics.flatMap(
        (t) => t.partitions.map((p) => `${t.topic}-${p.partitionIndex}`),
      );
      const leaderless: string[] = [];
      const lagging: string[] = [];
      let partitions = 0;
      for (const t of topics)
        for (const p of t.partitions) {
          partitions++;
          const name = `${t.name}-${p.partitionId}`;
          if (p.leader < 0) leaderless.push(name);
          else if (p.isr.length < p.replicas.length)
            lagging.push(`${name} (in sync [${p.isr.join(',')}] of [${p.replicas.join(',')}])`);
        }
      const some = (list: string[]) =>
        `${list.slice(0, 4).join(', ')}${list.length > 4 ? `, … ${list.length - 4} more` : ''}`;
      if (leaderless.length + lagging.length + moving.length === 0)
        return {
          inSync: true,
          detail: `kafka: all ${partitions} partitions of ${topics.length} topics have a leader and every replica in sync`,
        };
      return {
        inSync: false,
        detail:
          `kafka: ${partitions} partitions, ` +
          [
            leaderless.length ? `${leaderless.length} without a leader (${some(leaderless)})` : '',
            lagging.length ? `${lagging.length} with replicas out of sync (${some(lagging)})` : '',
            moving.length ? `${moving.length} being reassigned (${some(moving)})` : '',
          ]
            .filter(Boolean)
            .join(', '),
      };
    });
  }

  return {
    becomeVoter,
    removeVoter,
    applyMoves,
    ensureTopics,
    inSyncNow,
  };
}

export type KafkaRebalance = ReturnType<typeof createKafkaRebalance>;
