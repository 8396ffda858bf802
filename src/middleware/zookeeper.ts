import { readFile, readdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import zookeeper from 'node-zookeeper-client';
import { z } from 'zod';
import type { DataOperation, NodeLayout } from '../config/layout.js';
import { ClusterGuardError } from '../contracts/errors.js';
import {
  listData,
  operationOptions,
  waitInSync,
  wipeFolder,
  writeFiles,
  type AdapterDeps,
} from './common.js';
import { runningPid, startProcess, stopProcess, type ProcessSpec } from './supervisor.js';
import type {
  ClusterView,
  DataResult,
  InSyncReport,
  MiddlewareAdapter,
  MiddlewareOperation,
  OperationOptions,
  ServerStatus,
} from './types.js';

/** Seed 001 §6 ZookeeperConfiguration.clusterOptions. */
export interface ZooKeeperOptions {
  /** Client port; like every port here, bound to the node's own address only. */
  clientPort: number;
  /** Followers connect to the leader on this port. */
  peerPort: number;
  /** Leader election. */
  electionPort: number;
  tickTime: number;
  initLimit: number;
  syncLimit: number;
  /** Java heap of the server (-Xmx). */
  heapMb: number;
}

export const zooKeeperDefaults: ZooKeeperOptions = {
  clientPort: 2181,
  peerPort: 2888,
  electionPort: 3888,
  tickTime: 2000,
  initLimit: 10,
  syncLimit: 5,
  heapMb: 128,
};

/**
 * Stands for the applying node's `node-data` folder in a generated zoo.cfg. The master generates
 * every member's file but cannot know where another node keeps its data (each node has its own
 * root), so `dataDir` stays symbolic until the node applies the file (`applyZooKeeperConfig`).
 */
export const NODE_DATA_PLACEHOLDER = '{{node-data}}';

/** Seen in a real 3.9 log once the peer listens for leader election, i.e. takes part in a quorum. */
const SUCCESS_FILTER = 'is accepting connections now, my election bind port';
/**
 * 3.9's fatal start-up lines: QuorumPeerMain's `Invalid config, exiting abnormally` (and its
 * siblings), a missing jar (the main thread dies but the JVM may linger), and ports in use.
 */
const FAIL_FILTER =
  'exiting abnormally|Thread\\[main[^\\]]*\\] died|java\\.lang\\.NoClassDefFoundError|Address already in use';

const startDefaults = { successFilter: SUCCESS_FILTER, failFilter: FAIL_FILTER };
const defaultOperationOptions: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: { timeoutMs: 60_000, ...startDefaults },
  createCluster: { timeoutMs: 60_000, ...startDefaults },
  // Includes syncing a snapshot from the leader and, when needed, the reconfiguration that adds it.
  joinCluster: { timeoutMs: 120_000, ...startDefaults },
  rejoinCluster: { timeoutMs: 120_000, ...startDefaults },
  /** Grace period of SIGTERM before SIGKILL. */
  stopServer: { timeoutMs: 15_000 },
  /** Per four-letter-word probe. */
  checkServer: { timeoutMs: 2_000 },
  /** One wait of a membership runbook's in-sync step. */
  checkInSync: { timeoutMs: 30_000 },
  decommissionCluster: { timeoutMs: 60_000 },
  exportData: { timeoutMs: 120_000 },
  importData: { timeoutMs: 120_000 },
  backupData: { timeoutMs: 120_000 },
  restoreData: { timeoutMs: 120_000 },
};

const MAX_SERVER_ID = 255;

function checkedOptions(options: Partial<ZooKeeperOptions> | undefined): ZooKeeperOptions {
  const o = { ...zooKeeperDefaults, ...options };
  for (const key of ['clientPort', 'peerPort', 'electionPort'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1 || o[key] > 65535)
      throw new ClusterGuardError('InvalidInput', `ZooKeeper ${key} ${o[key]} is not a TCP port`);
  }
  if (new Set([o.clientPort, o.peerPort, o.electionPort]).size !== 3) {
    throw new ClusterGuardError(
      'InvalidInput',
      `ZooKeeper clientPort, peerPort and electionPort must differ (got ${o.clientPort}, ${o.peerPort}, ${o.electionPort})`,
    );
  }
  for (const key of ['tickTime', 'initLimit', 'syncLimit', 'heapMb'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new ClusterGuardError('InvalidInput', `ZooKeeper ${key} must be a positive integer`);
  }
  return o;
}

/** Server ids of the members, in `cluster.nodes` order; refuses missing or clashing ids. */
function serverIds(cluster: ClusterView): { address: string; id: number }[] {
  const seen = new Map<number, string>();
  return cluster.nodes.map((address) => {
    const id = cluster.memberIds[address];
    if (id === undefined || !Number.isInteger(id) || id < 1 || id > MAX_SERVER_ID) {
      throw new ClusterGuardError(
        'InvalidInput',
        `member ${address} has no valid ZooKeeper server id in memberIds (${JSON.stringify(cluster.memberIds)}): ` +
          `ids are integers 1–${MAX_SERVER_ID}; derive them with assignMemberIds`,
      );
    }
    const clash = seen.get(id);
    if (clash !== undefined) {
      throw new ClusterGuardError(
        'InvalidInput',
        `members ${clash} and ${address} share ZooKeeper server id ${id}; derive memberIds with assignMemberIds`,
      );
    }
    seen.set(id, address);
    return { address, id };
  });
}

const serverLine = (id: number, address: string, o: ZooKeeperOptions) =>
  `server.${id}=${address}:${o.peerPort}:${o.electionPort}:participant;${address}:${o.clientPort}`;

/**
 * Pure: `zoo.cfg` and `myid` of `address` for this membership. Every size, 1 included, is a
 * replicated ensemble (`standaloneEnabled=false`): a single node is then the leader of a
 * one-voter quorum, and grows by dynamic reconfiguration with neither its files nor its data
 * converted from standalone mode. `dataDir` is `{{node-data}}/zookeeper/data`, resolved when the
 * node applies the files.
 */
export function generateZooKeeperConfig(
  cluster: ClusterView,
  address: string,
  options?: Partial<ZooKeeperOptions>,
): Record<string, string> {
  const o = checkedOptions(options);
  const members = serverIds(cluster);
  const self = members.find((m) => m.address === address);
  if (!self) {
    throw new ClusterGuardError(
      'InvalidInput',
      `cannot generate ZooKeeper configuration for ${address}: it is not a member (${cluster.nodes.join(', ')})`,
    );
  }
  const lines = [
    `# ZooKeeper server ${self.id} on ${address}, one of ${members.length}; generated by clusterguard.`,
    "# dataDir becomes this node's own data folder when the node applies this file;",
    '# ZooKeeper rewrites the file after a reconfiguration (dynamicConfigFile).',
    `tickTime=${o.tickTime}`,
    `initLimit=${o.initLimit}`,
    `syncLimit=${o.syncLimit}`,
    `dataDir=${NODE_DATA_PLACEHOLDER}/zookeeper/data`,
    `clientPort=${o.clientPort}`,
    `clientPortAddress=${address}`,
    // Its default port 8080 would clash between nodes sharing a machine and with CockroachDB.
    'admin.enableServer=false',
    '4lw.commands.whitelist=ruok,srvr,mntr,conf',
    'reconfigEnabled=true',
    'standaloneEnabled=false',
    // Reconfiguration is reserved to the super user unless ACLs are skipped; the appliance does
    // not use ZooKeeper ACLs.
    'skipACL=yes',
    // A long-lived appliance would otherwise keep every snapshot and log.
    'autopurge.snapRetainCount=3',
    'autopurge.purgeInterval=24',
    ...members.map((m) => serverLine(m.id, m.address, o)),
  ];
  return { 'zoo.cfg': `${lines.join('\n')}\n`, myid: `${self.id}\n` };
}

/**
 * Which ensemble the data folder belongs to: written beside `myid` whenever a configuration is
 * applied for a known cluster, so that a later join can tell a member's own data from a
 * stranger's (ZooKeeper itself has no cluster id).
 */
export const ensembleMarkerFile = 'clusterguard-ensemble.json';

/**
 * Whether a (re)joining server may keep its data folder: only when the folder holds this
 * ensemble's data as the same server id. A folder from before the marker existed counts as the
 * ensemble's own on a rejoin (the runbook's word that the node was a member) when its myid
 * matches. Anything else is wiped, so that a foreign history never enters the ensemble.
 */
export async function keepsZooKeeperData(
  layout: NodeLayout,
  myid: string,
  clusterUuid: string | undefined,
  rejoin: boolean,
): Promise<boolean> {
  const dataFolder = layout.nodeDataFolder('zookeeper');
  const current = (await readFile(path.join(dataFolder, 'myid'), 'utf8').catch(() => '')).trim();
  if (current !== myid.trim()) return false;
  const marker = await readFile(path.join(dataFolder, ensembleMarkerFile), 'utf8').then(
    (t) => JSON.parse(t) as { clusterUuid?: string },
    () => undefined,
  );
  if (marker) return clusterUuid !== undefined && marker.clusterUuid === clusterUuid;
  return rejoin;
}

/**
 * Installs generated (or downloaded) files as this node's configuration: `dataDir` becomes the
 * node's own data folder, `myid` is copied into it and, with `clusterUuid`, the ensemble marker.
 * `wipeData` empties the data folder first (a server that joins with another ensemble's data or
 * none, see `keepsZooKeeperData`).
 */
export async function applyZooKeeperConfig(
  layout: NodeLayout,
  files: Record<string, string>,
  { wipeData, clusterUuid }: { wipeData: boolean; clusterUuid?: string },
): Promise<void> {
  const cfg = files['zoo.cfg'];
  const myid = files.myid?.trim();
  if (cfg === undefined || !myid || !/^\d+$/.test(myid)) {
    throw new ClusterGuardError(
      'InvalidInput',
      'a ZooKeeper configuration needs zoo.cfg and a numeric myid; regenerate it on the master',
    );
  }
  const dataFolder = layout.nodeDataFolder('zookeeper');
  const resolved = cfg.replace(/^dataDir=.*$/m, `dataDir=${dataFolder}`);
  await writeFiles(layout.nodeConfigFolder('zookeeper'), { ...files, 'zoo.cfg': resolved });
  if (wipeData) await wipeFolder(dataFolder);
  else await layout.ensure(dataFolder);
  await writeFile(path.join(dataFolder, 'myid'), `${myid}\n`);
  if (clusterUuid)
    await writeFile(
      path.join(dataFolder, ensembleMarkerFile),
      `${JSON.stringify({ clusterUuid, myid: Number(myid) })}\n`,
    );
}

async function readFolderFiles(folder: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (entry.isFile()) files[entry.name] = await readFile(path.join(folder, entry.name), 'utf8');
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Four-letter words and the wire protocol

/** Sends a four-letter word and returns the whole answer (the server closes after it). */
export function fourLetterWord(
  host: string,
  port: number,
  word: 'ruok' | 'srvr' | 'mntr' | 'conf',
  timeoutMs = 2000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no answer to ${word} within ${timeoutMs} ms`)),
    );
    socket.once('connect', () => socket.end(word));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

interface Srvr {
  mode?: string;
  version?: string;
  zxid?: string;
  /** Set when the server runs but has no quorum. */
  notServing: boolean;
}

function parseSrvr(text: string): Srvr {
  return {
    mode: /^Mode: (\S+)/m.exec(text)?.[1],
    version: /^Zookeeper version: ([^-,\s]+)/m.exec(text)?.[1],
    zxid: /^Zxid: (\S+)/m.exec(text)?.[1],
    notServing: /not currently serving requests/.test(text),
  };
}

const servingModes = new Set(['leader', 'follower', 'observer', 'standalone']);

/**
 * Reconfiguration is not in node-zookeeper-client (it speaks the 3.4 protocol), and the Java CLI
 * needs commons-cli, which Maven's runtime scope leaves out of a server's lib folder. So this
 * speaks the few messages needed itself: a session, getData, reconfig, closeSession.
 */
const OP = { getData: 4, reconfig: 16, closeSession: -11 } as const;

const zkErrorNames: Record<number, string> = {
  [-1]: 'SystemError',
  [-4]: 'ConnectionLoss',
  [-6]: 'Unimplemented',
  [-7]: 'OperationTimeout',
  [-8]: 'BadArguments',
  [-13]: 'NewConfigNoQuorum',
  [-14]: 'ReconfigInProgress',
  [-101]: 'NoNode',
  [-102]: 'NoAuth',
  [-103]: 'BadVersion',
  [-123]: 'ReconfigDisabled',
};

class ZooKeeperReplyError extends Error {
  constructor(
    readonly code: number,
    what: string,
  ) {
    super(`${what}: ZooKeeper answered ${zkErrorNames[code] ?? 'error'} (${code})`);
  }
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const ustring = (s: string | null) =>
  s === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
const frame = (body: Buffer) => Buffer.concat([int32(body.length), body]);

/** One short session on one server; requests are sent one at a time. */
class WireSession {
  private pending = Buffer.alloc(0);
  private frames: Buffer[] = [];
  private waiter?: { resolve: (b: Buffer) => void; reject: (e: Error) => void };
  private failure?: Error;
  private xid = 0;

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const size = this.pending.readInt32BE(0);
        if (this.pending.length < 4 + size) break;
        this.frames.push(this.pending.subarray(4, 4 + size));
        this.pending = this.pending.subarray(4 + size);
      }
      this.deliver();
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.deliver();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection')));
  }

  static async open(host: string, port: number, timeoutMs: number): Promise<WireSession> {
    const socket = net.connect({ host, port });
    const session = new WireSession(socket, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    }).catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
    // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
    socket.write(
      frame(
        Buffer.concat([
          int32(0),
          int64(0n),
          int32(30_000),
          int64(0n),
          int32(16),
          Buffer.alloc(16),
          Buffer.from([0]),
        ]),
      ),
    );
    try {
      const reply = await session.next();
      if (reply.length < 16 || reply.readInt32BE(4) <= 0)
        throw new Error('the server refused the session');
    } catch (err) {
      socket.destroy();
      throw new Error(
        `no ZooKeeper session on ${host}:${port} (is it serving, with a quorum?): ${(err as Error).message}`,
      );
    }
    return session;
  }

  private deliver(): void {
    if (!this.waiter) return;
    const next = this.frames.shift();
    if (next) this.waiter.resolve(next);
    else if (this.failure) this.waiter.reject(this.failure);
    else return;
    this.waiter = undefined;
  }

  private next(): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = {
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.deliver();
    });
  }

  /** Sends one request; returns the reply body, or throws ZooKeeperReplyError for its error code. */
  async request(type: number, payload: Buffer, what: string): Promise<Buffer> {
    const xid = ++this.xid;
    this.socket.write(frame(Buffer.concat([int32(xid), int32(type), payload])));
    for (;;) {
      const reply = await this.next();
      // Negative xids are notifications and pings, which a session without watches can ignore.
      if (reply.readInt32BE(0) !== xid) continue;
      const err = reply.readInt32BE(12);
      if (err !== 0) throw new ZooKeeperReplyError(err, what);
      return reply.subarray(16);
    }
  }

  /** A GetDataResponse's data (the Stat that follows is not needed). */
  static data(body: Buffer): string {
    const size = body.readInt32BE(0);
    return size < 0 ? '' : body.subarray(4, 4 + size).toString('utf8');
  }

  async close(): Promise<void> {
    try {
      await this.request(OP.closeSession, Buffer.alloc(0), 'closeSession');
    } catch {
      // the session expires by itself
    } finally {
      this.socket.destroy();
    }
  }
}

async function withWireSession<T>(
  host: string,
  port: number,
  timeoutMs: number,
  fn: (session: WireSession) => Promise<T>,
): Promise<T> {
  const session = await WireSession.open(host, port, timeoutMs);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

interface EnsembleMember {
  id: number;
  host: string;
  role: 'participant' | 'observer';
  line: string;
}
interface EnsembleConfig {
  members: EnsembleMember[];
  /** Hex, as ZooKeeper writes it; reconfig takes it to refuse a concurrent change. */
  version?: string;
}

/** Parses the dynamic configuration (`/zookeeper/config`, `zoo.cfg.dynamic.*`). */
export function parseEnsembleConfig(text: string): EnsembleConfig {
  const members: EnsembleMember[] = [];
  let version: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const server = /^server\.(\d+)=(\[[^\]]+\]|[^:;]+):\d+:\d+(?::(participant|observer))?/.exec(
      line,
    );
    if (server?.[1] && server[2]) {
      members.push({
        id: Number(server[1]),
        host: server[2].replace(/^\[|\]$/g, ''),
        role: server[3] === 'observer' ? 'observer' : 'participant',
        line,
      });
    }
    const v = /^version=([0-9a-fA-F]+)$/.exec(line);
    if (v) version = v[1];
  }
  return { members, version };
}

const describeMembers = (members: EnsembleMember[]) =>
  members.map((m) => `${m.host} (id ${m.id})`).join(', ') || 'none';

// ---------------------------------------------------------------------------------------------
// Logical dump of the znode tree

const DUMP_FILE = 'znodes.json';
const DUMP_FORMAT = 'clusterguard.zookeeper.znodes/1';

const dumpSchema = z.object({
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
type Dump = z.infer<typeof dumpSchema>;

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

type ZkClient = ReturnType<typeof zookeeper.createClient>;

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
async function dumpTree(client: ZkClient): Promise<Dump['znodes']> {
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
async function loadTree(client: ZkClient, znodes: Dump['znodes']): Promise<void> {
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
async function clearTree(client: ZkClient): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// The adapter

/**
 * Jars that ZooKeeper 3.9 needs at run time but declares `provided` in its pom, so a lib folder
 * assembled by Maven's runtime scope lacks them (its own binary distribution has them).
 */
const requiredJars: { pattern: RegExp; name: string }[] = [
  { pattern: /^zookeeper-\d+\.\d+\.\d+\.jar$/, name: 'zookeeper-<version>.jar' },
  { pattern: /^zookeeper-jute-.*\.jar$/, name: 'zookeeper-jute' },
  { pattern: /^metrics-core-4\..*\.jar$/, name: 'io.dropwizard.metrics:metrics-core 4.x' },
  { pattern: /^snappy-java-.*\.jar$/, name: 'org.xerial.snappy:snappy-java' },
];

export function createZooKeeperAdapter(deps: AdapterDeps<ZooKeeperOptions>): MiddlewareAdapter {
  const { address, layout, logger } = deps;
  const options = checkedOptions(deps.options);
  const opts = (op: MiddlewareOperation) =>
    operationOptions(defaultOperationOptions, deps.operationOptions, op);
  const who = `ZooKeeper on ${address}`;
  const libDir = path.join(deps.binDir, 'zookeeper', 'lib');
  const configFolder = layout.nodeConfigFolder('zookeeper');
  const zooCfg = path.join(configFolder, 'zoo.cfg');
  const dataFolder = layout.nodeDataFolder('zookeeper');

  const spec: ProcessSpec = {
    name: `zookeeper on ${address}`,
    command: deps.java ?? 'java',
    args: [
      `-Xmx${options.heapMb}m`,
      // Supervised: a server out of memory must exit and be restarted, not limp on.
      '-XX:+ExitOnOutOfMemoryError',
      // slf4j-simple writes no timestamps unless asked; other bindings ignore these.
      '-Dorg.slf4j.simpleLogger.showDateTime=true',
      "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
      '-cp',
      `${libDir}/*`,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      zooCfg,
    ],
    cwd: path.join(layout.nodeDataRoot, 'zookeeper'),
    pidFile: path.join(layout.nodeDataRoot, 'zookeeper', 'zookeeper.pid'),
    logFile: path.join(layout.nodeLogFolder('zookeeper'), 'zookeeper.log'),
    // The config path is unique to this node's root, so another node's server on the same
    // machine is never taken for this one.
    marker: zooCfg,
  };

  const probe = async (host: string, word: 'ruok' | 'srvr') =>
    fourLetterWord(host, options.clientPort, word, opts('checkServer').timeoutMs);

  async function srvrOf(host: string): Promise<Srvr | undefined> {
    try {
      return parseSrvr(await probe(host, 'srvr'));
    } catch {
      return undefined;
    }
  }

  async function checkJars(): Promise<void> {
    let files: string[];
    try {
      files = await readdir(libDir);
    } catch {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: no ZooKeeper jars at ${libDir}; install the ZooKeeper lib folder there (development: npm run setup)`,
      );
    }
    const missing = requiredJars.filter((j) => !files.some((f) => j.pattern.test(f)));
    if (missing.length > 0) {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: ${libDir} lacks ${missing.map((m) => m.name).join(', ')}, which the ZooKeeper server loads at start ` +
          `(they are "provided" in ZooKeeper's pom, so copy-dependencies with runtime scope omits them); add them to that folder`,
      );
    }
  }

  async function hasConfig(): Promise<boolean> {
    try {
      return (await readFile(zooCfg, 'utf8')).length > 0;
    } catch {
      return false;
    }
  }

  /** Single-member configurations can have a Mode at once; an ensemble only with a quorum. */
  async function configuredVoters(): Promise<number> {
    const text = await readFile(zooCfg, 'utf8');
    const dynamic = /^dynamicConfigFile=(.+)$/m.exec(text)?.[1];
    const full = dynamic ? `${text}\n${await readFile(dynamic, 'utf8').catch(() => '')}` : text;
    return parseEnsembleConfig(full).members.filter((m) => m.role === 'participant').length;
  }

  /** myid lives in dataDir; a wiped or fresh data folder gets it back from node-config. */
  async function ensureMyid(): Promise<void> {
    const myid = (await readFile(path.join(configFolder, 'myid'), 'utf8').catch(() => '')).trim();
    if (!/^\d+$/.test(myid)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: ${configFolder}/myid is missing or not a number; apply the node's configuration again (createCluster or joinCluster)`,
      );
    }
    await layout.ensure(dataFolder);
    const current = await readFile(path.join(dataFolder, 'myid'), 'utf8').catch(() => '');
    if (current.trim() !== myid) await writeFile(path.join(dataFolder, 'myid'), `${myid}\n`);
  }

  async function launch(op: MiddlewareOperation, requireQuorum: boolean): Promise<void> {
    await checkJars();
    if (!(await hasConfig())) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: no configuration at ${zooCfg}; run createCluster on the master or joinCluster on this node first`,
      );
    }
    const cfgText = await readFile(zooCfg, 'utf8');
    if (/^dataDir=.*\{\{/m.test(cfgText)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: ${zooCfg} still contains ${NODE_DATA_PLACEHOLDER}; it was copied instead of applied — apply it with createCluster/joinCluster`,
      );
    }
    await ensureMyid();
    const o = opts(op);
    const ready = async () => {
      if ((await probe(address, 'ruok')) !== 'imok') return false;
      if (!requireQuorum) return true;
      const mode = (await srvrOf(address))?.mode;
      return mode !== undefined && servingModes.has(mode);
    };
    try {
      const { pid, alreadyRunning } = await startProcess(spec, {
        timeoutMs: o.timeoutMs,
        successFilter: o.successFilter,
        failFilter: o.failFilter,
        ready,
        signal: deps.signal,
        onWait: (ms) => deps.onProgress?.(`${op}: waiting for ${who} (${Math.round(ms / 1000)} s)`),
      });
      logger.info(`${who} ${alreadyRunning ? 'was already running' : 'started'}`, { op, pid });
    } catch (err) {
      if (err instanceof ClusterGuardError) {
        const waitedForQuorum =
          requireQuorum && /its log showed success but it does not answer/.test(err.message);
        const next = waitedForQuorum
          ? 'Next: it ran but never joined a quorum — start ZooKeeper on a majority of the members ' +
            '(the master first) and check that their peer and election ports are reachable, then retry.'
          : 'Next: fix what the log above names (configuration, ports in use, jars, Java), then retry.';
        throw new ClusterGuardError(err.type, `${who} (${op}): ${err.message}\n${next}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async function checkServer(): Promise<ServerStatus> {
    const pid = await runningPid(spec);
    if (!pid) return { running: false, healthy: false, detail: `${who} is not running` };
    let ruok: string;
    try {
      ruok = await probe(address, 'ruok');
    } catch (err) {
      return {
        running: true,
        healthy: false,
        pid,
        detail: `${who} runs (pid ${pid}) but does not answer on ${address}:${options.clientPort}: ${(err as Error).message}`,
      };
    }
    const srvr = await srvrOf(address);
    const mode = srvr?.mode;
    const healthy = ruok === 'imok' && mode !== undefined && servingModes.has(mode);
    const detail = healthy
      ? `${mode}, ZooKeeper ${srvr?.version ?? '?'}, zxid ${srvr?.zxid ?? '?'}`
      : srvr?.notServing
        ? `${who} runs (pid ${pid}) but is not serving: no quorum yet (start a majority of the members)`
        : `${who} runs (pid ${pid}) but answered ruok "${ruok}"${mode ? `, mode ${mode}` : ''}`;
    return { running: true, healthy, pid, detail };
  }

  async function stopServer(stopOptions?: { force?: boolean }): Promise<void> {
    const { wasRunning } = await stopProcess(spec, {
      graceMs: opts('stopServer').timeoutMs,
      force: stopOptions?.force,
    });
    if (wasRunning) logger.info(`${who} stopped`, { force: stopOptions?.force ?? false });
  }

  /** The current dynamic configuration, read through the first member that serves. */
  async function liveConfig(
    candidates: string[],
    timeoutMs: number,
  ): Promise<{ via: string; config: EnsembleConfig }> {
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
  async function reconfig(
    candidates: string[],
    change: { joining?: string; leaving?: string },
    version: string | undefined,
    done: (config: EnsembleConfig) => boolean,
    deadline: number,
  ): Promise<EnsembleConfig> {
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
        const { config } = await liveConfig(candidates, Math.min(5_000, remaining()));
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
  async function ensureVoter(cluster: ClusterView, id: number, deadline: number): Promise<void> {
    const remaining = () => Math.max(5_000, deadline - Date.now());
    const { config } = await liveConfig([address], remaining());
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
  async function inSyncNow(): Promise<InSyncReport> {
    const { config } = await liveConfig([address], opts('checkServer').timeoutMs * 5);
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

  async function joinEnsemble(op: 'joinCluster' | 'rejoinCluster', cluster: ClusterView) {
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
    await ensureVoter(cluster, Number(files.myid?.trim()), deadline);
  }

  async function dataOperation(
    op: DataOperation,
    work: (client: ZkClient, folder: string) => Promise<void>,
  ): Promise<DataResult> {
    const name = `${op}Data` as const;
    const folder = layout.workingFolder(op, 'zookeeper');
    const srvr = await srvrOf(address);
    if (!srvr?.mode || !servingModes.has(srvr.mode)) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${who} (${name}): the server is not serving (${srvr ? 'no quorum' : 'no answer'}); start it (startServer) and make sure a majority of the ensemble runs, then retry`,
      );
    }
    try {
      await withZooKeeperClient(
        `${address}:${options.clientPort}`,
        opts(name).timeoutMs,
        (client) => work(client, folder),
      );
    } catch (err) {
      if (err instanceof ClusterGuardError) throw err;
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `${who} (${name}) failed: ${(err as Error).message}. Next: check that the server serves (checkServer), then retry`,
        { cause: err },
      );
    }
    return listData(folder);
  }

  async function writeDump(op: DataOperation): Promise<DataResult> {
    return dataOperation(op, async (client, folder) => {
      const znodes = await dumpTree(client);
      const dump: Dump = {
        format: DUMP_FORMAT,
        createdAt: new Date().toISOString(),
        source: address,
        znodes,
      };
      await wipeFolder(folder);
      await writeFile(path.join(folder, DUMP_FILE), `${JSON.stringify(dump, null, 1)}\n`);
      logger.info(`${who}: ${op} wrote ${znodes.length} znodes`, { folder });
    });
  }

  async function readDump(op: DataOperation, replace: boolean): Promise<DataResult> {
    const file = path.join(layout.workingFolder(op, 'zookeeper'), DUMP_FILE);
    let dump: Dump;
    try {
      dump = dumpSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch (err) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who} (${op}Data): ${file} is missing or not a ZooKeeper dump (${(err as Error).message.split('\n')[0]}); ` +
          'unpack an export or backup archive of clusterguard into that folder first',
      );
    }
    return dataOperation(op, async (client) => {
      if (replace) await clearTree(client);
      await loadTree(client, dump.znodes);
      logger.info(`${who}: ${op} loaded ${dump.znodes.length} znodes from ${dump.source}`, {
        replace,
      });
    });
  }

  return {
    name: 'zookeeper',

    generateConfig: (cluster, node) => generateZooKeeperConfig(cluster, node, options),

    async startServer(cluster) {
      // Seed 001 §2: a single node is set up without asking a master (itself) for its files. An
      // existing configuration is kept: ZooKeeper rewrites it after reconfigurations.
      if (cluster && !(await hasConfig())) {
        await applyZooKeeperConfig(layout, generateZooKeeperConfig(cluster, address, options), {
          wipeData: false,
          clusterUuid: cluster.clusterUuid,
        });
      }
      await launch('startServer', true);
      return checkServer();
    },

    stopServer,
    checkServer,
    checkInSync: () =>
      waitInSync(inSyncNow, {
        timeoutMs: opts('checkInSync').timeoutMs,
        signal: deps.signal,
        onProgress: (detail) => deps.onProgress?.(detail),
      }),

    async prepareClusterConfig(cluster) {
      for (const node of cluster.nodes) {
        await writeFiles(
          layout.clusterConfigFor(node, 'zookeeper'),
          generateZooKeeperConfig(cluster, node, options),
        );
      }
    },

    async createCluster(cluster) {
      for (const node of cluster.nodes) {
        await writeFiles(
          layout.clusterConfigFor(node, 'zookeeper'),
          generateZooKeeperConfig(cluster, node, options),
        );
      }
      // ZooKeeper reads zoo.cfg only at start.
      await stopServer();
      await applyZooKeeperConfig(
        layout,
        await readFolderFiles(layout.clusterConfigFor(address, 'zookeeper')),
        { wipeData: false, clusterUuid: cluster.clusterUuid },
      );
      // The master of a new ensemble cannot have a quorum before a majority has joined: it is
      // started when it answers; a single member must also lead.
      await launch('createCluster', (await configuredVoters()) === 1);
    },

    async joinCluster(cluster) {
      await joinEnsemble('joinCluster', cluster);
    },

    async rejoinCluster(cluster) {
      await joinEnsemble('rejoinCluster', cluster);
    },

    async decommissionCluster(cluster, leaving) {
      const timeoutMs = opts('decommissionCluster').timeoutMs;
      const survivors = [address, ...cluster.nodes].filter(
        (n, i, all) => !leaving.includes(n) && all.indexOf(n) === i,
      );
      const { via, config } = await liveConfig(survivors, timeoutMs);
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
    },

    exportData: () => writeDump('export'),
    backupData: () => writeDump('backup'),
    // Import merges into what the ensemble holds; restore makes it exactly the backup.
    importData: () => readDump('import', false),
    restoreData: () => readDump('restore', true),
  };
}
