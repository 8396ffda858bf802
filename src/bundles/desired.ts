import net from 'node:net';
import { zookeeper } from '../middleware/zookeeper/client.js';
import type { DesiredBundle } from '../contracts/bundle-view.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { withZooKeeperClient } from '../middleware/zookeeper/index.js';

/**
 * The cluster's desired bundle set, in its own ZooKeeper (docs/bundles.md, "Desired set"):
 * `/clusterguard/bundles/<symbolicName>` holds the version the cluster should run, and one child
 * per version ever made desired, `/clusterguard/bundles/<symbolicName>/<version>`, is kept, so
 * the history of a bundle survives with the cluster's data (backup, export).
 */
export const desiredRoot = '/clusterguard/bundles';

type ZkClient = Parameters<Parameters<typeof withZooKeeperClient>[2]>[0];

const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

function call<T>(fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

async function ensure(client: ZkClient, p: string, data: Buffer): Promise<boolean> {
  try {
    await call<string>((cb) => client.create(p, data, zookeeper.CreateMode.PERSISTENT, cb));
    return true;
  } catch (err) {
    if (codeOf(err) === zookeeper.Exception.NODE_EXISTS) return false;
    throw err;
  }
}

async function set(client: ZkClient, p: string, data: Buffer): Promise<void> {
  if (!(await ensure(client, p, data))) {
    await call((cb) => client.setData(p, data, -1, cb));
  }
}

/** A znode's children, none when it does not exist (nothing was ever rolled out). */
async function childrenOf(client: ZkClient, p: string): Promise<string[]> {
  try {
    return await call<string[]>((cb) => client.getChildren(p, cb));
  } catch (err) {
    if (codeOf(err) === zookeeper.Exception.NO_NODE) return [];
    throw err;
  }
}

async function readNode(
  client: ZkClient,
  p: string,
): Promise<[Buffer | undefined, zookeeper.Stat]> {
  return new Promise((resolve, reject) =>
    client.getData(p, (err, d, st) => (err ? reject(err) : resolve([d, st]))),
  );
}

async function readEntry(client: ZkClient, p: string): Promise<DesiredBundle | undefined> {
  return parse((await readNode(client, p))[0]);
}

/**
 * Whether any server of the connection string accepts a connection: the client library would
 * retry a dead ensemble until its timeout, which a rollout should not wait out on every attempt.
 */
async function anyListens(connectionString: string, timeoutMs = 1500): Promise<boolean> {
  const hosts = connectionString.split(',').map((hp) => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hp.trim());
    return { host: m?.[1] ?? hp, port: Number(m?.[2] ?? 2181) };
  });
  const one = ({ host, port }: { host: string; port: number }) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port, timeout: timeoutMs });
      const end = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('connect', () => end(true));
      socket.once('timeout', () => end(false));
      socket.once('error', () => end(false));
    });
  return (await Promise.all(hosts.map(one))).some(Boolean);
}

async function withZooKeeper<T>(
  connectionString: string,
  timeoutMs: number,
  fn: (client: ZkClient) => Promise<T>,
): Promise<T> {
  if (!(await anyListens(connectionString))) {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `no ZooKeeper server accepts connections on ${connectionString}`,
    );
  }
  return withZooKeeperClient(connectionString, timeoutMs, fn);
}

const empty = Buffer.alloc(0);
const zkName = /^[A-Za-z0-9._-]+$/;

function fail(what: string, connectionString: string, err: unknown): ClusterGuardError {
  if (err instanceof ClusterGuardError) return err;
  return new ClusterGuardError(
    'MiddlewareFailure',
    `${what} in ZooKeeper (${connectionString}) failed: ${(err as Error).message}. ZooKeeper ` +
      'must serve with a quorum; start it (startServer) and retry',
    { cause: err },
  );
}

/** One session on the cluster's ZooKeeper, its failure said as `what` failed. */
async function inZooKeeper<T>(
  what: string,
  connectionString: string,
  timeoutMs: number,
  fn: (client: ZkClient) => Promise<T>,
): Promise<T> {
  try {
    return await withZooKeeper(connectionString, timeoutMs, fn);
  } catch (err) {
    throw fail(what, connectionString, err);
  }
}

export async function recordDesiredBundle(
  connectionString: string,
  entry: DesiredBundle,
  timeoutMs = 20_000,
): Promise<void> {
  if (!zkName.test(entry.symbolicName) || !zkName.test(entry.version)) {
    throw new ClusterGuardError(
      'InvalidInput',
      `cannot record ${entry.symbolicName} ${entry.version} as desired: a name for a znode has ` +
        'letters, digits, dots, dashes and underscores only',
    );
  }
  const data = Buffer.from(JSON.stringify(entry));
  const what = `recording ${entry.symbolicName} ${entry.version} as desired`;
  await inZooKeeper(what, connectionString, timeoutMs, async (client) => {
    await ensure(client, '/clusterguard', empty);
    await ensure(client, desiredRoot, empty);
    const node = `${desiredRoot}/${entry.symbolicName}`;
    await ensure(client, node, empty);
    // The history first: the current pointer never names a version without its record.
    await set(client, `${node}/${entry.version}`, data);
    await set(client, node, data);
  });
}

function parse(data: Buffer | undefined): DesiredBundle | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<DesiredBundle>;
    return typeof v.symbolicName === 'string' &&
      typeof v.version === 'string' &&
      typeof v.sha256 === 'string'
      ? (v as DesiredBundle)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The desired set: one entry per bundle, empty when nothing was ever rolled out, in the order
 * the bundles first came into the cluster (the creation order of their znodes, czxid). That is
 * an order a node can install them in: a rollout is verified, so a bundle that needs another
 * (a package, a DS service) completed only after that one ran; by name, a consumer would come
 * before its provider and be refused.
 */
export async function readDesiredBundles(
  connectionString: string,
  timeoutMs = 20_000,
): Promise<DesiredBundle[]> {
  return inZooKeeper('reading the desired bundles', connectionString, timeoutMs, async (client) => {
    const out: { entry: DesiredBundle; czxid: Buffer }[] = [];
    for (const name of (await childrenOf(client, desiredRoot)).sort()) {
      const [data, stat] = await readNode(client, `${desiredRoot}/${name}`);
      const entry = parse(data);
      if (entry) out.push({ entry, czxid: stat.czxid });
    }
    // Big-endian 64-bit: byte order is number order. The sort is stable: ties stay by name.
    return out.sort((a, b) => Buffer.compare(a.czxid, b.czxid)).map((o) => o.entry);
  });
}

/** Every version ever desired of one bundle, oldest record first by its time. */
export async function desiredHistory(
  connectionString: string,
  symbolicName: string,
  timeoutMs = 20_000,
): Promise<DesiredBundle[]> {
  return withZooKeeper(connectionString, timeoutMs, async (client) => {
    const node = `${desiredRoot}/${symbolicName}`;
    const versions = await call<string[]>((cb) => client.getChildren(node, cb));
    const out: DesiredBundle[] = [];
    for (const v of versions) {
      const entry = await readEntry(client, `${node}/${v}`);
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => a.at.localeCompare(b.at));
  });
}

/** The whole record: the desired set (in install order) and every version ever desired. */
export interface DesiredRecords {
  desired: DesiredBundle[];
  history: DesiredBundle[];
}

/** The desired set and its history, for a backup of the bundle set (src/bundles/backup.ts). */
export async function readDesiredRecords(
  connectionString: string,
  timeoutMs = 20_000,
): Promise<DesiredRecords> {
  const desired = await readDesiredBundles(connectionString, timeoutMs);
  const what = 'reading the history of the desired bundles';
  return inZooKeeper(what, connectionString, timeoutMs, async (client) => {
    const history: DesiredBundle[] = [];
    for (const name of (await childrenOf(client, desiredRoot)).sort()) {
      const node = `${desiredRoot}/${name}`;
      const versions = await call<string[]>((cb) => client.getChildren(node, cb));
      for (const v of versions.sort()) {
        const entry = await readEntry(client, `${node}/${v}`);
        if (entry) history.push(entry);
      }
    }
    return { desired, history: history.sort((a, b) => a.at.localeCompare(b.at)) };
  });
}

/**
 * Puts a backed-up record back (restoreCluster): `/clusterguard/bundles` is emptied and written
 * again, the desired bundles first in their order (their znodes' creation order is the order a
 * joining node installs them in, which a ZooKeeper restore, creating znodes by path, loses),
 * then the names that only have a history. Restores run alone on a cluster (docs/design.md,
 * "Admission"), so no rollout records a version meanwhile.
 */
export async function replaceDesiredBundles(
  connectionString: string,
  records: DesiredRecords,
  timeoutMs = 20_000,
): Promise<void> {
  const all = [...records.desired, ...records.history];
  const bad = all.find((e) => !zkName.test(e.symbolicName) || !zkName.test(e.version));
  if (bad) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `the backed-up desired set names ${JSON.stringify(bad.symbolicName)} ${JSON.stringify(bad.version)}, ` +
        'which is no znode name; nothing was written to ZooKeeper',
    );
  }
  const what = 'writing the backed-up desired bundles';
  await inZooKeeper(what, connectionString, timeoutMs, async (client) => {
    await ensure(client, '/clusterguard', empty);
    for (const name of await childrenOf(client, desiredRoot)) {
      const node = `${desiredRoot}/${name}`;
      for (const v of await childrenOf(client, node)) await remove(client, `${node}/${v}`);
      await remove(client, node);
    }
    await ensure(client, desiredRoot, empty);
    const order = [
      ...records.desired.map((d) => d.symbolicName),
      ...records.history.map((h) => h.symbolicName),
    ].filter((n, i, list) => list.indexOf(n) === i);
    for (const name of order) {
      const node = `${desiredRoot}/${name}`;
      const current = records.desired.find((d) => d.symbolicName === name);
      await set(client, node, current ? Buffer.from(JSON.stringify(current)) : empty);
      const versions = [...records.history, ...(current ? [current] : [])].filter(
        (h) => h.symbolicName === name,
      );
      for (const h of versions) {
        await set(client, `${node}/${h.version}`, Buffer.from(JSON.stringify(h)));
      }
    }
  });
}

async function remove(client: ZkClient, p: string): Promise<void> {
  try {
    await call<void>((cb) => client.remove(p, -1, (err) => cb(err, undefined)));
  } catch (err) {
    if (codeOf(err) !== zookeeper.Exception.NO_NODE) throw err;
  }
}
