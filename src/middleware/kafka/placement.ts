import type { ITopicMetadata } from 'kafkajs';

export interface ReplicaMove {
  topic: string;
  partition: number;
  from: number[];
  to: number[];
}

/**
 * New replica lists that take `remove` off every partition and raise partitions below
 * `targetReplicas` (capped at the live brokers), choosing the least-loaded live brokers. A
 * replaced broker's slot keeps its position, so the preferred leader moves only when it leaves.
 */
export function planReplicaMoves(
  topics: readonly ITopicMetadata[],
  liveBrokers: readonly number[],
  options: { remove?: readonly number[]; targetReplicas?: number },
): ReplicaMove[] {
  const remove = new Set(options.remove ?? []);
  const candidates = liveBrokers.filter((b) => !remove.has(b));
  const load = new Map<number, number>(candidates.map((b) => [b, 0]));
  for (const t of topics)
    for (const p of t.partitions)
      for (const r of p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1);
  const pick = (taken: Set<number>): number | undefined => {
    let best: number | undefined;
    for (const b of candidates)
      if (!taken.has(b) && (best === undefined || load.get(b)! < load.get(best)!)) best = b;
    if (best !== undefined) {
      load.set(best, load.get(best)! + 1);
      taken.add(best);
    }
    return best;
  };
  const moves: ReplicaMove[] = [];
  for (const t of [...topics].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const p of [...t.partitions].sort((a, b) => a.partitionId - b.partitionId)) {
      const taken = new Set(p.replicas.filter((r) => !remove.has(r)));
      const to: number[] = [];
      for (const r of p.replicas) {
        if (!remove.has(r)) to.push(r);
        else {
          const replacement = pick(taken);
          if (replacement !== undefined) to.push(replacement);
        }
      }
      const want = Math.min(
        Math.max(p.replicas.length, options.targetReplicas ?? 0),
        candidates.length,
      );
      while (to.length < want) {
        const extra = pick(taken);
        if (extra === undefined) break;
        to.push(extra);
      }
      if (to.length !== p.replicas.length || to.some((r, i) => r !== p.replicas[i]))
        moves.push({ topic: t.name, partition: p.partitionId, from: [...p.replicas], to });
    }
  }
  return moves;
}
