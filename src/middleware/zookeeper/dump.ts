import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { zookeeper } from './client.js';
import { z } from 'zod';
import { ClusterGuardError } from '../../contracts/errors.js';

export const DUMP_FILE = 'znodes.json';
export const DUMP_FORMAT = 'clusterguard.zookeeper.znodes/1';

export const dumpSchema = z.object({
  format: z.literal(DUMP_FORMAT),
  createdAt: z.string(),
  source: z.string(),
  znodes: z.array(
    z.object({
      path: z.string().regex(/^\/[^\0]*[^/]$/),
      data: z.base64(),
    }),
  ),
});
export type Dump = z.infer<typeof dumpSchema>;

/**
 * Reads a znode dump (`<op>-data/zookeeper/`) the way a restore or import would, without a
 * server: for a restore test. Throws naming what would fail.
 */
export async function readZooKeeperDump(
  folder: string,
): Promise<{ znodes: number; bytes: number }> {
  let dump: Dump;
  try {
    dump = dumpSchema.parse(JSON.parse(await readFile(path.join(folder, DUMP_FILE), 'utf8')));
  } catch (err) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${folder}/${DUMP_FILE} is missing or not a ZooKeeper dump (${(err as Error).message.split('\n')[0]})`,
    );
  }
  const bytes = dump.znodes.reduce((n, z) => n + Buffer.from(z.data, 'base64').length, 0);
  return { znodes: dump.znodes.length, bytes };
}

export type ZkClient = ReturnType<typeof zookeeper.createClient>;

/**
 * Runs `fn` with a connected node-zookeeper-client session; bounded, since the client retries a
 * connection forever.
 */
export async function withZooKeeperClient<T>(
  connectionString: string,
  timeoutMs: number,
  fn: (client: ZkClient) => Promise<T>,
): Promise<T> {
  const client = zookeeper.createClient(connectionString, {
    sessionTimeout: 10_000,
    spinDelay: 500,
    retries: 2,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no ZooKeeper session on ${connectionString} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      client.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
      client.connect();
    });
    return await fn(client);
  } finally {
    client.close();
  }
}

const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

function call<T>(fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

const childPath = (parent: string, name: string) =>
  parent === '/' ? `/${name}` : `${parent}/${name}`;
const isSystemPath = (p: string) => p === '/zookeeper' || p.startsWith('/zookeeper/');

/**
 * Every persistent znode except ZooKeeper's own `/zookeeper` subtree, parents before children.
 * Ephemeral znodes belong to live sessions and are left out.
 */
export async function dumpTree(client: ZkClient): Promise<Dump['znodes']> {
  const out: Dump['znodes'] = [];
  const queue = ['/'];
  while (queue.length > 0) {
    const batch = queue.splice(0, 32);
    const results = await Promise.all(
      batch.map(async (p) => {
        try {
          const [data, stat] = await new Promise<[Buffer | undefined, zookeeper.Stat]>(
            (resolve, reject) =>
              client.getData(p, (err, d, s) => (err ? reject(err) : resolve([d, s]))),
          );
          const children = await call<string[]>((cb) => client.getChildren(p, cb));
          return { p, data, stat, children };
        } catch (err) {
          // Deleted while the tree was walked: it is simply not part of the dump.
          if (codeOf(err) === zookeeper.Exception.NO_NODE) return undefined;
          throw err;
        }
      }),
    );
    for (const r of results) {
      if (!r) continue;
      if (r.p !== '/') {
        if (r.stat.ephemeralOwner.some((b) => b !== 0)) continue;
        out.push({ path: r.p, data: (r.data ?? Buffer.alloc(0)).toString('base64') });
      }
      for (const name of r.children.sort()) {
        const child = childPath(r.p, name);
        if (!isSystemPath(child)) queue.push(child);
      }
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Creates or overwrites every znode of the dump, parents first. */
export async function loadTree(client: ZkClient, znodes: Dump['znodes']): Promise<void> {
  const sorted = [...znodes].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
  for (const node of sorted) {
    const data = Buffer.from(node.data, 'base64');
    try {
      await call<string>((cb) =>
        client.create(node.path, data, zookeeper.CreateMode.PERSISTENT, cb),
      );
    } catch (err) {
      if (codeOf(err) !== zookeeper.Exception.NODE_EXISTS) throw err;
      await call<zookeeper.Stat>((cb) => client.setData(node.path, data, -1, cb));
    }
  }
}

/** Deletes every znode outside `/zookeeper`, children first. */
export async function clearTree(client: ZkClient): Promise<void> {
  const existing = await dumpTreePaths(client);
  for (const p of existing.sort((a, b) => b.split('/').length - a.split('/').length)) {
    try {
      await call<void>((cb) => client.remove(p, -1, (err) => cb(err, undefined)));
    } catch (err) {
      if (codeOf(err) !== zookeeper.Exception.NO_NODE) throw err;
    }
  }
}

/** Every znode path outside `/zookeeper`, ephemeral ones included (a restore removes them too). */
async function dumpTreePaths(client: ZkClient): Promise<string[]> {
  const out: string[] = [];
  const queue = ['/'];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let children: string[];
    try {
      children = await call<string[]>((cb) => client.getChildren(p, cb));
    } catch (err) {
      if (codeOf(err) === zookeeper.Exception.NO_NODE) continue;
      throw err;
    }
    for (const name of children) {
      const child = childPath(p, name);
      if (isSystemPath(child)) continue;
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
