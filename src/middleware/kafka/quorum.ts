import { z } from 'zod';

export interface KafkaVoter {
  id: number;
  directoryId: string;
  /** Host of its controller endpoint. */
  host?: string;
}

export interface KafkaQuorum {
  leaderId: number;
  voters: KafkaVoter[];
  observers: KafkaVoter[];
}

export const replicaStateSchema = z.array(
  z.object({
    id: z.number(),
    directoryId: z.string().optional(),
    endpoints: z.array(z.string()).optional(),
  }),
);

/** Parses `kafka-metadata-quorum describe --status` (3.9). */
export function parseQuorumStatus(text: string): KafkaQuorum {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const replicas = (name: string): KafkaVoter[] => {
    const raw = field(name);
    if (raw === undefined) throw new Error(`no ${name} in quorum status`);
    return replicaStateSchema.parse(JSON.parse(raw)).map((r) => ({
      id: r.id,
      directoryId: r.directoryId ?? 'AAAAAAAAAAAAAAAAAAAAAA',
      host: r.endpoints?.[0] ? /:\/\/([^:]+):\d+$/.exec(r.endpoints[0])?.[1] : undefined,
    }));
  };
  const leaderId = Number(field('LeaderId'));
  if (!Number.isInteger(leaderId)) throw new Error('no LeaderId in quorum status');
  return { leaderId, voters: replicas('CurrentVoters'), observers: replicas('CurrentObservers') };
}

export const quorumSize = (n: number) => Math.floor(n / 2) + 1;
