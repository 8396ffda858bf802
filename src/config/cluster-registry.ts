import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { nodeAddressSchema } from '../contracts/addresses.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { describeZodError } from '../contracts/validation.js';

/**
 * The clusters this orchestrator knows (docs/design.md, "The cluster record"): per cluster id,
 * its members with the master first, as a membership runbook left them or as a runbook given
 * an explicit `master` read them. Runbooks started with only a cluster's name find their master
 * here; the members themselves are always read again from the master's cluster.json.
 */
export const clusterRecordSchema = z.object({
  /** Members, the master first (the order of cluster.json's `nodes`). */
  nodes: z.array(nodeAddressSchema).min(1),
  /** `<workflow id>/<run id>` of the runbook that recorded it. */
  recordedBy: z.string(),
  recordedAt: z.string(),
});
export type ClusterRecord = z.infer<typeof clusterRecordSchema>;

const registryFileSchema = z.object({
  clusters: z.record(z.string(), clusterRecordSchema),
});

/** The error a runbook gets for a cluster id with no record: how to bootstrap or adopt it. */
export function unknownClusterMessage(clusterId: string, file: string): string {
  return (
    `cluster ${clusterId} is not known to clusterguard (no record in ${file}). Nothing was ` +
    `changed. Bootstrap it with bootstrapCluster {"clusterId":"${clusterId}","nodes":[…]}, or ` +
    `adopt a running cluster by giving its master once: any data or bundle runbook started ` +
    `with "master":"<address>" records the members that master's cluster.json names`
  );
}

/** One JSON file, replaced atomically on every write; writes in one process are queued. */
export class ClusterRegistry {
  readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.file = path.resolve(file);
  }

  async get(clusterId: string): Promise<ClusterRecord | undefined> {
    return (await this.read()).clusters[clusterId];
  }

  /** Records `nodes` (master first) for `clusterId`; false when that is already the record. */
  record(clusterId: string, record: ClusterRecord): Promise<boolean> {
    const run = this.queue.then(async () => {
      const current = await this.read();
      const known = current.clusters[clusterId];
      if (known && known.nodes.join(',') === record.nodes.join(',')) return false;
      current.clusters[clusterId] = record;
      await mkdir(path.dirname(this.file), { recursive: true });
      const temp = `${this.file}.${randomUUID()}.tmp`;
      await writeFile(temp, `${JSON.stringify(current, null, 2)}\n`, 'utf8');
      await rename(temp, this.file);
      return true;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async read(): Promise<z.infer<typeof registryFileSchema>> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { clusters: {} };
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${this.file} is not valid JSON (${(error as Error).message}); it is left untouched: ` +
          'repair it, or move it aside and adopt each cluster again',
      );
    }
    const parsed = registryFileSchema.safeParse(json);
    if (!parsed.success) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${this.file} does not hold cluster records (${describeZodError(parsed.error)}); it is ` +
          'left untouched: repair it, or move it aside and adopt each cluster again',
      );
    }
    return parsed.data;
  }
}
