import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { IHeaders } from 'kafkajs';
import { z } from 'zod';
import { ClusterGuardError } from '../../contracts/errors.js';
import { topicNamePattern } from './config.js';

export const dataManifestSchema = z.object({
  format: z.literal('clusterguard-kafka-messages/1'),
  createdAt: z.string(),
  clusterId: z.string(),
  topics: z.array(
    z.object({
      name: z.string().regex(topicNamePattern),
      partitions: z.number().int().positive(),
      replicationFactor: z.number().int().positive(),
      configs: z.record(z.string(), z.string()),
      messages: z.number().int().nonnegative(),
      file: z.string(),
    }),
  ),
  warnings: z.array(z.string()),
});
export type DataManifest = z.infer<typeof dataManifestSchema>;

export const messageLineSchema = z.object({
  partition: z.number().int().nonnegative(),
  offset: z.string(),
  timestamp: z.string(),
  key: z.string().nullable(),
  value: z.string().nullable(),
  headers: z.array(z.tuple([z.string(), z.string()])),
});
export type MessageLine = z.infer<typeof messageLineSchema>;

export const dataManifestFile = 'topics.json';

/**
 * Reads a message dump (`<op>-data/kafka/`) the way a restore or import would, without a
 * broker: the manifest, then every line of every topic file parsed and counted against the
 * manifest. For a restore test; throws naming the first thing that would fail.
 */
export async function readKafkaDump(
  folder: string,
  signal?: AbortSignal,
): Promise<{ topics: number; messages: number }> {
  let data: DataManifest;
  try {
    data = dataManifestSchema.parse(
      JSON.parse(await readFile(path.join(folder, dataManifestFile), 'utf8')),
    );
  } catch (err) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${folder}/${dataManifestFile} is missing or not a clusterguard kafka message dump (${(err as Error).message.split('\n')[0]})`,
    );
  }
  let messages = 0;
  for (const t of data.topics) {
    if (t.file.includes('/') || t.file.includes('..')) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `topic ${t.name}: file ${t.file} is not a plain name`,
      );
    }
    let read = 0;
    const lines = createInterface({
      input: createReadStream(path.join(folder, t.file)),
      crlfDelay: Infinity,
    });
    for await (const text of lines) {
      signal?.throwIfAborted();
      if (!text.trim()) continue;
      const parsed = messageLineSchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `topic ${t.name}: line ${read + 1} of ${t.file} is not a message: ${parsed.error.issues[0]?.message ?? ''}`,
        );
      }
      read += 1;
    }
    if (read !== t.messages) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `topic ${t.name}: ${t.file} holds ${read} messages, its manifest says ${t.messages}`,
      );
    }
    messages += read;
  }
  return { topics: data.topics.length, messages };
}

export function headerPairs(headers: IHeaders | undefined): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [k, v] of Object.entries(headers ?? {})) {
    for (const item of Array.isArray(v) ? v : v === undefined ? [] : [v])
      pairs.push([k, Buffer.from(item).toString('base64')]);
  }
  return pairs;
}

export function headersFrom(pairs: [string, string][]): IHeaders {
  const headers: Record<string, Buffer[]> = {};
  for (const [k, v] of pairs) (headers[k] ??= []).push(Buffer.from(v, 'base64'));
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, v.length === 1 ? v[0] : v]),
  );
}
