import net from 'node:net';

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

export interface Srvr {
  mode?: string;
  version?: string;
  zxid?: string;
  /** Set when the server runs but has no quorum. */
  notServing: boolean;
}

export function parseSrvr(text: string): Srvr {
  return {
    mode: /^Mode: (\S+)/m.exec(text)?.[1],
    version: /^Zookeeper version: ([^-,\s]+)/m.exec(text)?.[1],
    zxid: /^Zxid: (\S+)/m.exec(text)?.[1],
    notServing: /not currently serving requests/.test(text),
  };
}

export const servingModes = new Set(['leader', 'follower', 'observer', 'standalone']);

/**
 * Reconfiguration is not in node-zookeeper-client (it speaks the 3.4 protocol), and the Java CLI
 * needs commons-cli, which Maven's runtime scope leaves out of a server's lib folder. So this
 * speaks the few messages needed itself: a session, getData, reconfig, closeSession.
 */
export const OP = { getData: 4, reconfig: 16, closeSession: -11 } as const;

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

export class ZooKeeperReplyError extends Error {
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
export const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
export const ustring = (s: string | null) =>
  s === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
const frame = (body: Buffer) => Buffer.concat([int32(body.length), body]);

/** One short session on one server; requests are sent one at a time. */
export class WireSession {
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

export async function withWireSession<T>(
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

export interface EnsembleMember {
  id: number;
  host: string;
  role: 'participant' | 'observer';
  line: string;
}
export interface EnsembleConfig {
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

export const describeMembers = (members: EnsembleMember[]) =>
  members.map((m) => `${m.host} (id ${m.id})`).join(', ') || 'none';
